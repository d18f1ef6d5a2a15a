# Least-privilege roles for the pipeline.
#
#   batch_job        the analysis job (task role): read the raw bucket (GetObject/ListBucket
#                    only, never PutObject), consume/extend/delete its SQS message, read the
#                    DB secret, decrypt with the pipeline key via those services.
#   batch_execution  pulls the Batch image, writes the job's logs.
#   lambda           consumes the main queue, reads the metadata of videos/* (HeadObject, which
#                    IAM grants as s3:GetObject; never PutObject), submits Batch jobs (array
#                    jobs and dependsOn need no further action), terminates the duplicate it
#                    submitted when a concurrent invocation submitted first, writes its logs.
#   service_task     the FastAPI app: the upload endpoint is the only writer of videos/*.
#   service_execution pulls the service image, injects secrets, writes logs.
#   batch_instance   (GPU compute environment only) the ECS container instance role.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition       = data.aws_partition.current.partition
  batch_jobs      = "arn:${local.partition}:batch:${var.region}:${data.aws_caller_identity.current.account_id}:job/*"
  video_objects   = "${var.raw_bucket_arn}/${var.video_prefix}*"
  service_secrets = compact([var.db_secret_arn, var.api_token_secret_arn])
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# --- Batch job role ------------------------------------------------------------------------

resource "aws_iam_role" "batch_job" {
  name               = "${var.name}-batch-job"
  description        = "Capstone analysis job: read-only on the raw bucket, its SQS message, the DB secret"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "batch_job" {
  statement {
    sid       = "ListRawBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.raw_bucket_arn]
  }

  statement {
    sid       = "ReadRawVideos"
    actions   = ["s3:GetObject"]
    resources = [local.video_objects]
  }

  statement {
    sid = "ConsumeVideoQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "DeadLetterPermanentFailures"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
  }

  statement {
    sid       = "DecryptViaServices"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "s3.${var.region}.amazonaws.com",
        "sqs.${var.region}.amazonaws.com",
        "secretsmanager.${var.region}.amazonaws.com",
      ]
    }
  }
}

resource "aws_iam_role_policy" "batch_job" {
  name   = "analysis-job"
  role   = aws_iam_role.batch_job.id
  policy = data.aws_iam_policy_document.batch_job.json
}

# --- Batch execution role ------------------------------------------------------------------

resource "aws_iam_role" "batch_execution" {
  name               = "${var.name}-batch-execution"
  description        = "Pulls the Batch image and writes the job logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "batch_execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullBatchImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.batch_repository_arn]
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.batch_log_group_arn}:*"]
  }

  statement {
    sid       = "DecryptImageLayers"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "batch_execution" {
  name   = "batch-execution"
  role   = aws_iam_role.batch_execution.id
  policy = data.aws_iam_policy_document.batch_execution.json
}

# --- Lambda role ---------------------------------------------------------------------------

resource "aws_iam_role" "lambda" {
  name               = "${var.name}-submit-job"
  description        = "SQS-triggered Lambda that submits the Batch job(s) of each video"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid = "ConsumeVideoQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [var.queue_arn]
  }

  # HeadObject (the duration metadata that decides the split) is authorized as s3:GetObject.
  statement {
    sid       = "HeadRawVideos"
    actions   = ["s3:GetObject"]
    resources = [local.video_objects]
  }

  statement {
    sid       = "SubmitAnalysisJobs"
    actions   = ["batch:SubmitJob"]
    resources = concat(var.job_queue_arns, var.job_definition_arns)
  }

  statement {
    sid       = "DeduplicateJobs"
    actions   = ["batch:ListJobs", "batch:DescribeJobs"]
    resources = ["*"] # read-only Batch APIs without resource-level permissions
  }

  # Two invocations racing on duplicate events both submit; the later job is terminated.
  statement {
    sid       = "TerminateDuplicateJobs"
    actions   = ["batch:TerminateJob"]
    resources = [local.batch_jobs]
  }

  statement {
    sid       = "WriteFunctionLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.lambda_log_group_arn}:*"]
  }

  statement {
    sid       = "DecryptQueueMessagesAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "submit-job"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# ENI management for a function in a VPC, and X-Ray segments: both need "*" resources, so the
# AWS managed policies (which grant nothing on S3) are used.
resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy_attachment" "lambda_xray" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# --- FastAPI service roles -----------------------------------------------------------------

resource "aws_iam_role" "service_task" {
  name               = "${var.name}-service-task"
  description        = "FastAPI app: uploads videos, reads them for /analyze, reads the DB secret"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "service_task" {
  statement {
    sid       = "ListRawBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.raw_bucket_arn]
  }

  # POST /db/videos/upload/ is the only writer of the raw bucket, limited to videos/*.
  statement {
    sid       = "UploadAndReadVideos"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [local.video_objects]
  }

  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
  }

  statement {
    sid       = "EncryptDecryptViaServices"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "s3.${var.region}.amazonaws.com",
        "secretsmanager.${var.region}.amazonaws.com",
      ]
    }
  }
}

resource "aws_iam_role_policy" "service_task" {
  name   = "service-task"
  role   = aws_iam_role.service_task.id
  policy = data.aws_iam_policy_document.service_task.json
}

resource "aws_iam_role" "service_execution" {
  name               = "${var.name}-service-execution"
  description        = "Pulls the service image, injects secrets and writes the service logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "service_execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }

  statement {
    sid       = "PullServiceImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.service_repository_arn]
  }

  statement {
    sid       = "WriteServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.service_log_group_arn}:*"]
  }

  statement {
    sid       = "InjectSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.service_secrets
  }

  statement {
    sid       = "DecryptSecretsAndLayers"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "service_execution" {
  name   = "service-execution"
  role   = aws_iam_role.service_execution.id
  policy = data.aws_iam_policy_document.service_execution.json
}

# --- GPU container instances (optional EC2 compute environment) ----------------------------

resource "aws_iam_role" "batch_instance" {
  count              = var.enable_gpu ? 1 : 0
  name               = "${var.name}-batch-gpu-instance"
  description        = "ECS container instances of the GPU Batch compute environment"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "batch_instance" {
  count      = var.enable_gpu ? 1 : 0
  role       = aws_iam_role.batch_instance[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "batch_instance" {
  count = var.enable_gpu ? 1 : 0
  name  = "${var.name}-batch-gpu-instance"
  role  = aws_iam_role.batch_instance[0].name
}
