"""Static checks of the AWS infrastructure in terraform/ (offline: no providers, no AWS).

Every .tf file is parsed with python-hcl2 and the security and wiring properties of the
pipeline are asserted on the parsed resources:

- the Batch job and Lambda roles are never granted s3:PutObject (nor a wildcard covering it),
  and no role but the service task's (the upload endpoint) is; the Batch job's S3 access is
  exactly s3:GetObject + s3:ListBucket on the raw bucket, the Lambda's exactly s3:GetObject
  (HeadObject: the duration metadata that decides the array split) on videos/*;
- the raw bucket's ObjectCreated notification targets the main queue;
- the main queue redrives to the dead-letter queue, which has an alarm;
- every Batch job definition carries exactly SQS_QUEUE_URL, S3_BUCKET_RAW, FASTAPI_ENDPOINT,
  DB_SECRET_ARN;
- the Lambda event source reports batch item failures; the Lambda may submit (array and
  dependent) jobs on the analysis queues/definitions and gets the split settings;
- RDS is encrypted and not publicly accessible; every bucket blocks public access.

Each check is a plain function over a parsed tree; the mutation tests apply a violation to a
copy of terraform/ and require the check to fail, so a check cannot silently pass.
`terraform fmt -check` runs when a terraform binary exists; checkov (slow tier) runs through
tools/checkov.sh in its own virtual environment.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed")

ROOT = Path(__file__).resolve().parents[1]
TF_DIR = ROOT / "terraform"
JOB_ENV = {"SQS_QUEUE_URL", "S3_BUCKET_RAW", "FASTAPI_ENDPOINT", "DB_SECRET_ARN"}
# AWS managed policies that may be attached to the Batch job / Lambda roles: none grants S3 writes.
ALLOWED_MANAGED_POLICIES = {
    "service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXRayDaemonWriteAccess",
}


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------


def unq(value: Any) -> Any:
    """python-hcl2 8 keeps string quotes ('"x"') and wraps expressions ('${x}'): strip both."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            value = value[2:-1]
    return value


def deep_unq(value: Any) -> Any:
    if isinstance(value, list):
        return [deep_unq(v) for v in value]
    if isinstance(value, dict):
        return {unq(k): deep_unq(v) for k, v in value.items() if k != "__is_block__"}
    return unq(value)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class Module:
    path: str
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)

    def resource(self, rtype: str, name: str) -> dict:
        assert (rtype, name) in self.resources, f"{self.path}: missing resource {rtype}.{name}"
        return self.resources[(rtype, name)]

    def of_type(self, rtype: str) -> dict[str, dict]:
        return {n: b for (t, n), b in self.resources.items() if t == rtype}

    def var_default(self, name: str) -> Any:
        assert name in self.variables, f"{self.path}: missing variable {name}"
        return deep_unq(self.variables[name].get("default"))


def parse_module(directory: Path, rel: str) -> Module:
    mod = Module(rel)
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as fh:
            doc = hcl2.load(fh)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    mod.resources[(unq(rtype), unq(name))] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    mod.data[(unq(dtype), unq(name))] = body
        for block in doc.get("variable", []):
            for name, body in block.items():
                mod.variables[unq(name)] = body
        for block in doc.get("output", []):
            for name, body in block.items():
                mod.outputs[unq(name)] = body
        for block in doc.get("module", []):
            for name, body in block.items():
                mod.modules[unq(name)] = body
        for block in doc.get("locals", []):
            mod.locals.update(block)
    return mod


def load_tree(tf_dir: Path) -> dict[str, Module]:
    tree = {"root": parse_module(tf_dir, "root")}
    for sub in sorted((tf_dir / "modules").iterdir()):
        if sub.is_dir():
            tree[sub.name] = parse_module(sub, f"modules/{sub.name}")
    return tree


@lru_cache(maxsize=1)
def real_tree() -> dict[str, Module]:
    return load_tree(TF_DIR)


def module_source(tree: dict[str, Module], call: str) -> Module:
    """The child module behind `module "<call>"` in the root module."""
    root = tree["root"]
    assert call in root.modules, f"root module does not call module {call!r}"
    source = unq(root.modules[call]["source"])
    name = source.rstrip("/").split("/")[-1]
    assert source.startswith("./modules/") and name in tree, f"unexpected source {source}"
    return tree[name]


def ref_name(expr: Any, prefix: str) -> str | None:
    """'data.aws_iam_policy_document.x.json' -> 'x' for prefix 'data.aws_iam_policy_document'."""
    m = re.fullmatch(rf"{re.escape(prefix)}\.([A-Za-z0-9_-]+)(?:\[\d+\])?\.\w+", unq(expr) or "")
    return m.group(1) if m else None


def policy_statements(mod: Module, policy_expr: Any) -> list[dict]:
    name = ref_name(policy_expr, "data.aws_iam_policy_document")
    assert name, (
        f"{mod.path}: policy {policy_expr!r} must come from a data.aws_iam_policy_document "
        "so that it can be checked"
    )
    doc = mod.data[("aws_iam_policy_document", name)]
    return as_list(doc.get("statement"))


def grants(statement: dict, action: str) -> bool:
    """Whether an Allow statement's actions (wildcards included) cover `action`."""
    if unq(statement.get("effect", '"Allow"')) != "Allow":
        return False
    if "not_actions" in statement:
        return True  # NotAction grants everything else: treat as a grant
    return any(
        fnmatch.fnmatchcase(action.lower(), unq(a).lower())
        for a in as_list(statement.get("actions"))
    )


def role_grants(tree: dict[str, Module], role: str) -> tuple[list[dict], list[str]]:
    """All statements of inline policies and all managed policy ARNs attached to iam role `role`."""
    statements: list[dict] = []
    managed: list[str] = []
    role_ref = re.compile(rf"^aws_iam_role\.{re.escape(role)}(\[\d+\])?\.(id|name)$")
    for mod in tree.values():
        for rtype in (
            "aws_iam_role_policy",
            "aws_iam_role_policy_attachment",
            "aws_iam_policy_attachment",
        ):
            for body in mod.of_type(rtype).values():
                roles = [unq(r) for r in as_list(body.get("role", body.get("roles")))]
                if not any(role_ref.match(r or "") for r in roles):
                    continue
                if rtype == "aws_iam_role_policy":
                    statements += policy_statements(mod, body["policy"])
                else:
                    managed.append(unq(body["policy_arn"]))
        for rbody in mod.of_type("aws_iam_role").values():
            for inline in as_list(rbody.get("inline_policy")):
                statements += policy_statements(mod, inline["policy"])
    iam = tree["iam"]
    body = iam.resource("aws_iam_role", role)
    assert "managed_policy_arns" not in body, f"role {role}: use explicit attachments"
    return statements, managed


def resolve_local(mod: Module, expr: Any) -> str:
    """'local.x' -> the (unquoted) expression of local x in `mod`; anything else unquoted."""
    text = unq(expr)
    m = re.fullmatch(r"local\.([A-Za-z0-9_]+)", text or "")
    if m and m.group(1) in mod.locals:
        return unq(mod.locals[m.group(1)])
    return text


def job_definitions(tree: dict[str, Module]) -> dict[str, dict]:
    return tree["batch"].of_type("aws_batch_job_definition")


def container_environment_names(container_properties: Any) -> list[str]:
    text = unq(container_properties)
    m = re.search(r"\benvironment\s*=\s*\[(.*?)\]", text, re.S)
    assert m, "container_properties has no environment list"
    return re.findall(r'name\s*=\s*"([^"]+)"', m.group(1))


# --------------------------------------------------------------------------------------------
# Checks (each raises AssertionError when the property does not hold)
# --------------------------------------------------------------------------------------------


def check_no_put_object_for_analysis_roles(tree: dict[str, Module]) -> None:
    for role in ("batch_job", "lambda"):
        statements, managed = role_grants(tree, role)
        assert statements, f"role {role} has no policies (was it renamed?)"
        for st in statements:
            for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"):
                assert not grants(st, action), (
                    f"role {role} is granted {action}: {st.get('actions')}"
                )
        for arn in managed:
            assert any(arn.endswith(f":policy/{p}") for p in ALLOWED_MANAGED_POLICIES), (
                f"role {role} has managed policy {arn}, which is not known to be free of S3 writes"
            )


def check_only_upload_role_writes_objects(tree: dict[str, Module]) -> None:
    """Of every role in the iam module, only the service task (the upload endpoint) may put
    objects."""
    roles = tree["iam"].of_type("aws_iam_role")
    assert {"batch_job", "lambda", "service_task"} <= set(roles)
    for role in roles:
        if role == "service_task":
            continue
        statements, managed = role_grants(tree, role)
        for st in statements:
            for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"):
                assert not grants(st, action), (
                    f"role {role} is granted {action}: {st.get('actions')}"
                )
        for arn in managed:
            assert (
                "S3" not in arn and "AdministratorAccess" not in arn and "PowerUser" not in arn
            ), f"role {role} has managed policy {arn}"


def check_lambda_s3_head_only(tree: dict[str, Module]) -> None:
    """The Lambda reads object metadata only: s3:GetObject (HeadObject) on videos/*."""
    statements, _ = role_grants(tree, "lambda")
    s3_actions = set()
    for st in statements:
        for a in as_list(st.get("actions")):
            a = unq(a)
            if a.lower().startswith("s3:") or a == "*":
                s3_actions.add(a)
                resources = [resolve_local(tree["iam"], r) for r in as_list(st.get("resources"))]
                assert resources and all(
                    "var.raw_bucket_arn" in r and "var.video_prefix" in r for r in resources
                ), f"lambda S3 access must be limited to the raw bucket's videos, got {resources}"
    assert s3_actions == {"s3:GetObject"}, f"lambda S3 actions: {sorted(s3_actions)}"


def check_lambda_may_submit_array_jobs(tree: dict[str, Module]) -> None:
    """Array jobs and dependsOn need batch:SubmitJob on the queues and definitions only; the
    handler also lists jobs (de-duplication) and gets the split threshold."""
    statements, _ = role_grants(tree, "lambda")
    submit = [st for st in statements if grants(st, "batch:SubmitJob")]
    assert submit, "the Lambda may not submit jobs"
    resources = {unq(r) for st in submit for r in as_list(st.get("resources"))}
    assert any("var.job_queue_arns" in r for r in resources), resources
    assert any("var.job_definition_arns" in r for r in resources), resources
    assert any(grants(st, "batch:ListJobs") for st in statements), "no de-duplication"
    terminate = [st for st in statements if grants(st, "batch:TerminateJob")]
    assert terminate and all(unq(r) != "*" for st in terminate for r in as_list(st["resources"]))
    root = tree["root"]
    assert unq(root.modules["lambda"]["array_min_chunks"]) == "var.batch_array_min_chunks"
    assert root.var_default("batch_array_min_chunks") >= 2


def check_batch_job_s3_read_only(tree: dict[str, Module]) -> None:
    statements, managed = role_grants(tree, "batch_job")
    assert not managed, f"batch_job role must not have managed policies: {managed}"
    s3_actions = set()
    for st in statements:
        for a in as_list(st.get("actions")):
            a = unq(a)
            if a.lower().startswith("s3:") or a == "*":
                s3_actions.add(a)
                resources = [resolve_local(tree["iam"], r) for r in as_list(st.get("resources"))]
                assert resources and all("var.raw_bucket_arn" in r for r in resources), (
                    f"batch_job S3 access must be limited to the raw bucket, got {resources}"
                )
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}, (
        f"batch_job S3 actions: {sorted(s3_actions)}"
    )


def check_roles_are_wired(tree: dict[str, Module]) -> None:
    """The checked roles are the ones the job definitions and the Lambda function really use."""
    iam = tree["iam"]
    assert unq(iam.outputs["batch_job_role_arn"]["value"]) == "aws_iam_role.batch_job.arn"
    assert unq(iam.outputs["lambda_role_arn"]["value"]) == "aws_iam_role.lambda.arn"
    root = tree["root"]
    assert unq(root.modules["batch"]["job_role_arn"]) == "module.iam.batch_job_role_arn"
    assert unq(root.modules["lambda"]["role_arn"]) == "module.iam.lambda_role_arn"
    for name, jd in job_definitions(tree).items():
        props = unq(jd["container_properties"])
        assert re.search(r"jobRoleArn\s*=\s*var\.job_role_arn\b", props), (
            f"job definition {name}: jobRoleArn"
        )
    fn = module_source(tree, "lambda").resource("aws_lambda_function", "submit_job")
    assert unq(fn["role"]) == "var.role_arn"


def check_notification_targets_main_queue(tree: dict[str, Module]) -> None:
    storage = module_source(tree, "storage")
    notifications = storage.of_type("aws_s3_bucket_notification")
    assert len(notifications) == 1, "the raw bucket needs exactly one notification configuration"
    (body,) = notifications.values()
    assert unq(body["bucket"]) == "aws_s3_bucket.raw.id"
    queue_blocks = list(as_list(body.get("queue")))
    for dyn in as_list(body.get("dynamic")):
        for label, dbody in dyn.items():
            if unq(label) == "queue":
                queue_blocks += as_list(dbody.get("content"))
    assert queue_blocks, "the raw bucket notification has no queue target"
    assert not body.get("lambda_function") and not body.get("topic"), (
        "only the queue may be notified"
    )
    for q in queue_blocks:
        assert unq(q["queue_arn"]) == "var.queue_arn"
        assert [unq(e) for e in as_list(q["events"])] == ["s3:ObjectCreated:*"]
        assert "filter_suffix" in q, "notifications must be limited to video suffixes"
    suffixes = storage.var_default("video_suffixes")
    assert ".mp4" in suffixes and ".mov" in suffixes
    assert (
        unq(tree["root"].modules["storage"]["queue_arn"]) == "module.queue.notification_queue_arn"
    )
    queue = module_source(tree, "queue")
    assert unq(queue.outputs["notification_queue_arn"]["value"]) == "aws_sqs_queue.main.arn"


def check_queue_redrives_to_dlq(tree: dict[str, Module]) -> None:
    queue = module_source(tree, "queue")
    main = queue.resource("aws_sqs_queue", "main")
    dlq = queue.resource("aws_sqs_queue", "dlq")
    redrive = unq(main.get("redrive_policy", ""))
    assert re.search(r"deadLetterTargetArn\s*=\s*aws_sqs_queue\.dlq\.arn", redrive), (
        "main queue: no redrive to DLQ"
    )
    assert re.search(r"maxReceiveCount\s*=", redrive), "main queue: redrive without maxReceiveCount"
    assert "redrive_policy" not in dlq, "the DLQ must not redrive"
    assert queue.var_default("max_receive_count") >= 2
    assert queue.var_default("visibility_timeout_seconds") >= 900, (
        "visibility timeout too short for analyses"
    )
    alarms = [
        a
        for a in queue.of_type("aws_cloudwatch_metric_alarm").values()
        if "aws_sqs_queue.dlq.name" in str(a.get("dimensions"))
    ]
    assert alarms, "no alarm on the dead-letter queue"
    assert unq(tree["root"].modules["batch"]["queue_url"]) == "module.queue.queue_url"


def check_job_definition_environment(tree: dict[str, Module]) -> None:
    defs = job_definitions(tree)
    assert defs, "no Batch job definition"
    for name, jd in defs.items():
        env = container_environment_names(jd["container_properties"])
        assert len(env) == len(set(env)) and set(env) == JOB_ENV, (
            f"job definition {name} environment: {env}"
        )
        props = unq(jd["container_properties"])
        assert '"batch.process_video"' in props, f"job definition {name}: entrypoint"
        assert as_list(jd.get("retry_strategy")), f"job definition {name}: no retry strategy"
        assert as_list(jd.get("timeout")), f"job definition {name}: no timeout"
    batch = tree["root"].modules["batch"]
    assert unq(batch["fastapi_endpoint"]) == "module.service.api_url"
    assert unq(batch["db_secret_arn"]) == "module.database.secret_arn"
    assert unq(batch["raw_bucket_name"]) == "module.storage.bucket_name"


def check_lambda_reports_batch_item_failures(tree: dict[str, Module]) -> None:
    lam = module_source(tree, "lambda")
    mappings = lam.of_type("aws_lambda_event_source_mapping")
    assert mappings, "no SQS event source mapping"
    for body in mappings.values():
        types = [unq(t) for t in as_list(body.get("function_response_types"))]
        assert "ReportBatchItemFailures" in types, "event source must report batch item failures"
        assert unq(body["event_source_arn"]) == "var.queue_arn"
    assert unq(tree["root"].modules["lambda"]["queue_arn"]) == "module.queue.queue_arn"
    fn = lam.resource("aws_lambda_function", "submit_job")
    assert unq(fn["handler"]) == "lambda_handler.handler"
    (env,) = as_list(fn["environment"])
    assert set(env["variables"]) == {
        "BATCH_JOB_QUEUE",
        "BATCH_JOB_DEFINITION",
        "CAPSTONE_ANALYSIS_PARAMS",
        "CAPSTONE_BATCH_ARRAY_MIN_CHUNKS",
    }


def check_rds_encrypted_private(tree: dict[str, Module]) -> None:
    db = module_source(tree, "database")
    instances = db.of_type("aws_db_instance")
    assert instances, "no RDS instance"
    for name, body in instances.items():
        assert body.get("storage_encrypted") is True, f"aws_db_instance.{name} is not encrypted"
        assert body.get("publicly_accessible") is False, (
            f"aws_db_instance.{name} must set publicly_accessible = false"
        )
        assert unq(body["engine"]) == "postgres"
    assert int(str(db.var_default("engine_version")).split(".")[0]) >= 16
    assert "vector" in db.var_default("allowed_extensions"), "pgvector must be allowed"
    params = db.resource("aws_db_parameter_group", "this")["parameter"]
    assert any(
        unq(p["name"]) == "rds.force_ssl" and unq(p["value"]) == "1" for p in as_list(params)
    )
    assert db.of_type("aws_secretsmanager_secret"), (
        "database credentials must be in Secrets Manager"
    )


def check_buckets_block_public_access(tree: dict[str, Module]) -> None:
    flags = (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    )
    n_buckets = 0
    for mod in tree.values():
        blocks = mod.of_type("aws_s3_bucket_public_access_block")
        for name in mod.of_type("aws_s3_bucket"):
            n_buckets += 1
            matching = [
                b
                for b in blocks.values()
                if unq(b["bucket"]) in (f"aws_s3_bucket.{name}.id", f"aws_s3_bucket.{name}.bucket")
            ]
            assert matching, f"{mod.path}: bucket {name} has no public access block"
            for flag in flags:
                assert matching[0].get(flag) is True, (
                    f"{mod.path}: bucket {name}: {flag} is not true"
                )
    assert n_buckets >= 1


def check_raw_bucket_hardening(tree: dict[str, Module]) -> None:
    st = module_source(tree, "storage")
    assert (
        unq(st.resource("aws_s3_bucket_versioning", "raw")["versioning_configuration"][0]["status"])
        == "Enabled"
    )
    sse = st.resource("aws_s3_bucket_server_side_encryption_configuration", "raw")
    algo = unq(sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"])
    assert algo in ("aws:kms", "aws:kms:dsse", "AES256")
    rules = as_list(st.resource("aws_s3_bucket_lifecycle_configuration", "raw")["rule"])
    assert any(
        r.get("abort_incomplete_multipart_upload") and unq(r["status"]) == "Enabled" for r in rules
    )
    policy = st.resource("aws_s3_bucket_policy", "raw")
    stmts = policy_statements(st, policy["policy"])
    assert any(
        unq(s.get("effect")) == "Deny"
        and any(
            unq(c["variable"]) == "aws:SecureTransport"
            and [unq(v) for v in c["values"]] == ["false"]
            for c in as_list(s.get("condition"))
        )
        for s in stmts
    ), "raw bucket policy must deny non-TLS requests"


def check_service_and_images(tree: dict[str, Module]) -> None:
    svc = module_source(tree, "service")
    assert svc.var_default("port") == 8087
    hc = svc.resource("aws_lb_target_group", "api")["health_check"][0]
    assert unq(hc["path"]) == "/readyz"
    assert unq(svc.resource("aws_lb_listener", "api")["port"]) == "var.port"
    assert unq(svc.resource("aws_ecs_service", "api")["launch_type"]) == "FARGATE"
    ecr = module_source(tree, "ecr")
    for name, repo in ecr.of_type("aws_ecr_repository").items():
        assert repo["image_scanning_configuration"][0]["scan_on_push"] is True, (
            f"ECR {name}: scan on push"
        )
    assert set(ecr.var_default("repositories")) >= {"service", "batch"}


def check_root_interface(tree: dict[str, Module]) -> None:
    root = tree["root"]
    assert root.var_default("region") == "ap-northeast-2"
    assert "environment" in root.variables
    assert {"raw_bucket_name", "queue_url", "dlq_url", "api_url", "ecr_repository_urls"} <= set(
        root.outputs
    )
    assert {
        "network",
        "storage",
        "queue",
        "lambda",
        "batch",
        "service",
        "database",
        "ecr",
        "iam",
    } <= set(root.modules)


ALL_CHECKS = [
    check_no_put_object_for_analysis_roles,
    check_only_upload_role_writes_objects,
    check_lambda_s3_head_only,
    check_lambda_may_submit_array_jobs,
    check_batch_job_s3_read_only,
    check_roles_are_wired,
    check_notification_targets_main_queue,
    check_queue_redrives_to_dlq,
    check_job_definition_environment,
    check_lambda_reports_batch_item_failures,
    check_rds_encrypted_private,
    check_buckets_block_public_access,
    check_raw_bucket_hardening,
    check_service_and_images,
    check_root_interface,
]


# --------------------------------------------------------------------------------------------
# Tests on the real tree
# --------------------------------------------------------------------------------------------


def test_every_tf_file_parses():
    files = sorted(TF_DIR.rglob("*.tf"))
    files = [f for f in files if ".terraform" not in f.parts]
    assert len(files) >= 20
    for f in files:
        with f.open() as fh:
            hcl2.load(fh)  # raises on a syntax error


def test_example_tfvars_parses_and_sets_required_variables():
    with (TF_DIR / "example.tfvars").open() as fh:
        tfvars = {k: v for k, v in hcl2.load(fh).items() if not k.startswith("__")}
    required = {n for n, v in real_tree()["root"].variables.items() if "default" not in v}
    assert required <= set(tfvars), f"example.tfvars misses {required - set(tfvars)}"
    assert set(tfvars) <= set(real_tree()["root"].variables), (
        "example.tfvars sets unknown variables"
    )


def test_module_calls_only_pass_declared_variables():
    tree = real_tree()
    meta = {"source", "version", "providers", "depends_on", "count", "for_each"}
    for call, body in tree["root"].modules.items():
        child = module_source(tree, call)
        passed = set(body) - meta - {"__is_block__"}
        unknown = passed - set(child.variables)
        assert not unknown, f"module {call} is given undeclared variables {unknown}"
        missing = {n for n, v in child.variables.items() if "default" not in v} - passed
        assert not missing, f"module {call} misses required variables {missing}"


def test_module_outputs_used_by_root_exist():
    tree = real_tree()
    text = "\n".join(p.read_text() for p in TF_DIR.glob("*.tf"))
    for call, out in set(re.findall(r"module\.([a-z_]+)\.([a-z_]+)", text)):
        assert out in module_source(tree, call).outputs, f"module.{call}.{out} is not an output"


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_property(check):
    check(real_tree())


# --------------------------------------------------------------------------------------------
# Mutation tests: a violation in a copy of terraform/ must make the matching check fail
# --------------------------------------------------------------------------------------------

MUTATIONS = [
    (
        "put_object_on_batch_job",
        "modules/iam/main.tf",
        'sid       = "ReadRawVideos"\n    actions   = ["s3:GetObject"]',
        'sid       = "ReadRawVideos"\n    actions   = ["s3:GetObject", "s3:PutObject"]',
        [check_no_put_object_for_analysis_roles, check_batch_job_s3_read_only],
    ),
    (
        "s3_wildcard_on_lambda",
        "modules/iam/main.tf",
        'actions   = ["batch:SubmitJob"]',
        'actions   = ["batch:SubmitJob", "s3:*"]',
        [check_no_put_object_for_analysis_roles],
    ),
    (
        "put_object_on_lambda_head",
        "modules/iam/main.tf",
        'sid       = "HeadRawVideos"\n    actions   = ["s3:GetObject"]',
        'sid       = "HeadRawVideos"\n    actions   = ["s3:GetObject", "s3:PutObject"]',
        [
            check_no_put_object_for_analysis_roles,
            check_only_upload_role_writes_objects,
            check_lambda_s3_head_only,
        ],
    ),
    (
        "lambda_reads_every_bucket",
        "modules/iam/main.tf",
        'sid       = "HeadRawVideos"\n    actions   = ["s3:GetObject"]\n'
        "    resources = [local.video_objects]",
        'sid       = "HeadRawVideos"\n    actions   = ["s3:GetObject"]\n    resources = ["*"]',
        [check_lambda_s3_head_only],
    ),
    (
        "put_object_on_execution_role",
        "modules/iam/main.tf",
        'actions   = ["ecr:GetAuthorizationToken"]',
        'actions   = ["ecr:GetAuthorizationToken", "s3:PutObject"]',
        [check_only_upload_role_writes_objects],
    ),
    (
        "no_submit_on_definitions",
        "modules/iam/main.tf",
        "resources = concat(var.job_queue_arns, var.job_definition_arns)",
        "resources = var.job_queue_arns",
        [check_lambda_may_submit_array_jobs],
    ),
    (
        "no_array_threshold",
        "modules/lambda/main.tf",
        "      CAPSTONE_BATCH_ARRAY_MIN_CHUNKS = tostring(var.array_min_chunks)\n",
        "",
        [check_lambda_reports_batch_item_failures],
    ),
    (
        "full_access_managed_policy_on_lambda",
        "modules/iam/main.tf",
        "policy/AWSXRayDaemonWriteAccess",
        "policy/AmazonS3FullAccess",
        [check_no_put_object_for_analysis_roles],
    ),
    (
        "notification_to_other_queue",
        "modules/storage/main.tf",
        "queue_arn     = var.queue_arn",
        'queue_arn     = "arn:aws:sqs:ap-northeast-2:111111111111:other"',
        [check_notification_targets_main_queue],
    ),
    (
        "no_redrive",
        "modules/queue/main.tf",
        "deadLetterTargetArn = aws_sqs_queue.dlq.arn",
        'deadLetterTargetArn = "arn:aws:sqs:ap-northeast-2:111111111111:elsewhere"',
        [check_queue_redrives_to_dlq],
    ),
    (
        "fifth_job_variable",
        "modules/batch/main.tf",
        '{ name = "DB_SECRET_ARN", value = var.db_secret_arn },\n    ]\n    networkConfiguration',
        '{ name = "DB_SECRET_ARN", value = var.db_secret_arn },\n'
        '      { name = "DB_PASSWORD", value = "x" },\n    ]\n    networkConfiguration',
        [check_job_definition_environment],
    ),
    (
        "missing_job_variable",
        "modules/batch/main.tf",
        '      { name = "FASTAPI_ENDPOINT", value = var.fastapi_endpoint },\n',
        "",
        [check_job_definition_environment],
    ),
    (
        "no_batch_item_failures",
        "modules/lambda/main.tf",
        'function_response_types            = ["ReportBatchItemFailures"]',
        "function_response_types            = []",
        [check_lambda_reports_batch_item_failures],
    ),
    (
        "public_rds",
        "modules/database/main.tf",
        "publicly_accessible    = false",
        "publicly_accessible    = true",
        [check_rds_encrypted_private],
    ),
    (
        "unencrypted_rds",
        "modules/database/main.tf",
        "storage_encrypted     = true",
        "storage_encrypted     = false",
        [check_rds_encrypted_private],
    ),
    (
        "public_bucket",
        "modules/storage/main.tf",
        "restrict_public_buckets = true",
        "restrict_public_buckets = false",
        [check_buckets_block_public_access],
    ),
    (
        "bucket_without_block",
        "modules/storage/main.tf",
        'resource "aws_s3_bucket_ownership_controls" "raw" {',
        'resource "aws_s3_bucket" "extra" {\n  bucket = "extra"\n}\n\n'
        'resource "aws_s3_bucket_ownership_controls" "raw" {',
        [check_buckets_block_public_access],
    ),
]


@pytest.mark.parametrize("name,rel,old,new,checks", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_checks_catch_violation(tmp_path, name, rel, old, new, checks):
    copy = tmp_path / "terraform"
    shutil.copytree(TF_DIR, copy, ignore=shutil.ignore_patterns(".terraform*"))
    target = copy / rel
    text = target.read_text()
    assert text.count(old) >= 1, f"mutation {name}: anchor not found in {rel}"
    target.write_text(text.replace(old, new, 1))
    tree = load_tree(copy)
    for check in checks:
        with pytest.raises(AssertionError):
            check(tree)


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not found on PATH: `terraform fmt -check -recursive` not run")
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, (
        f"terraform fmt found unformatted files:\n{proc.stdout}\n{proc.stderr}"
    )


@pytest.mark.slow
def test_checkov():
    script = ROOT / "tools" / "checkov.sh"
    setup = subprocess.run(
        ["bash", str(script), "--install-only"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    if setup.returncode != 0:
        pytest.skip(
            f"checkov could not be installed (no network / no PyPI?): {setup.stderr.strip()[-500:]}"
        )
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"checkov reported failures:\n{out[-8000:]}"
    counts = re.findall(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", out)
    assert len(counts) == 2, f"expected a terraform and a dockerfile result:\n{out[-4000:]}"
    assert all(int(p) > 0 and int(f) == 0 for p, f, _ in counts), out[-4000:]
