# capstone on AWS: S3 raw bucket -> SQS (+DLQ) -> Lambda -> AWS Batch (Fargate) -> FastAPI on
# ECS behind an ALB (:8087) -> RDS PostgreSQL + pgvector. See README.md for the apply order.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name            = "${var.project}-${var.environment}"
  account_id      = data.aws_caller_identity.current.account_id
  raw_bucket_name = coalesce(var.raw_bucket_name, "${local.name}-raw-${local.account_id}")
  raw_bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${local.raw_bucket_name}"

  # The Lambda may submit any revision of the analysis job definitions.
  job_definition_arn_patterns = [
    "arn:${data.aws_partition.current.partition}:batch:${var.region}:${local.account_id}:job-definition/${local.name}-analysis:*",
    "arn:${data.aws_partition.current.partition}:batch:${var.region}:${local.account_id}:job-definition/${local.name}-analysis-gpu:*",
  ]
}

module "kms" {
  source = "./modules/kms"
  name   = local.name
}

module "network" {
  source             = "./modules/network"
  name               = local.name
  region             = var.region
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  public_subnet_ids  = var.public_subnet_ids
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  alb_ingress_cidrs  = var.alb_ingress_cidrs
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "ecr" {
  source      = "./modules/ecr"
  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "queue" {
  source                     = "./modules/queue"
  name                       = local.name
  kms_key_arn                = module.kms.key_arn
  source_bucket_arn          = local.raw_bucket_arn
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  max_receive_count          = var.max_receive_count
  alarm_actions              = var.alarm_actions
}

module "storage" {
  source         = "./modules/storage"
  bucket_name    = local.raw_bucket_name
  kms_key_arn    = module.kms.key_arn
  queue_arn      = module.queue.notification_queue_arn
  video_prefix   = var.video_prefix
  video_suffixes = var.video_suffixes
}

module "database" {
  source              = "./modules/database"
  name                = local.name
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.db_security_group_id
  kms_key_arn         = module.kms.key_arn
  engine_version      = var.db_engine_version
  instance_class      = var.db_instance_class
  allocated_storage   = var.db_allocated_storage
  multi_az            = var.db_multi_az
  deletion_protection = var.deletion_protection
}

module "iam" {
  source                 = "./modules/iam"
  name                   = local.name
  region                 = var.region
  raw_bucket_arn         = module.storage.bucket_arn
  video_prefix           = var.video_prefix
  queue_arn              = module.queue.queue_arn
  dlq_arn                = module.queue.dlq_arn
  db_secret_arn          = module.database.secret_arn
  api_token_secret_arn   = var.api_token_secret_arn
  kms_key_arn            = module.kms.key_arn
  job_queue_arns         = module.batch.job_queue_arns
  job_definition_arns    = local.job_definition_arn_patterns
  batch_repository_arn   = module.ecr.repository_arns["batch"]
  service_repository_arn = module.ecr.repository_arns["service"]
  batch_log_group_arn    = module.batch.log_group_arn
  service_log_group_arn  = module.service.log_group_arn
  lambda_log_group_arn   = module.lambda.log_group_arn
  enable_gpu             = var.enable_gpu
}

module "service" {
  source                    = "./modules/service"
  name                      = local.name
  image                     = "${module.ecr.repository_urls["service"]}:${var.image_tag}"
  vpc_id                    = module.network.vpc_id
  private_subnet_ids        = module.network.private_subnet_ids
  public_subnet_ids         = module.network.public_subnet_ids
  internal                  = var.alb_internal
  alb_security_group_id     = module.network.alb_security_group_id
  service_security_group_id = module.network.service_security_group_id
  certificate_arn           = var.certificate_arn
  domain_name               = var.domain_name
  execution_role_arn        = module.iam.service_execution_role_arn
  task_role_arn             = module.iam.service_task_role_arn
  raw_bucket_name           = module.storage.bucket_name
  db_secret_arn             = module.database.secret_arn
  api_token_secret_arn      = var.api_token_secret_arn
  cpu                       = var.service_cpu
  memory                    = var.service_memory
  desired_count             = var.service_desired_count
  deletion_protection       = var.deletion_protection
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
}

module "batch" {
  source                   = "./modules/batch"
  name                     = local.name
  image                    = "${module.ecr.repository_urls["batch"]}:${var.image_tag}"
  subnet_ids               = module.network.private_subnet_ids
  security_group_id        = module.network.batch_security_group_id
  job_role_arn             = module.iam.batch_job_role_arn
  execution_role_arn       = module.iam.batch_execution_role_arn
  queue_url                = module.queue.queue_url
  raw_bucket_name          = module.storage.bucket_name
  fastapi_endpoint         = module.service.api_url
  db_secret_arn            = module.database.secret_arn
  kms_key_arn              = module.kms.key_arn
  log_retention_days       = var.log_retention_days
  max_vcpus                = var.batch_max_vcpus
  job_vcpu                 = var.batch_job_vcpu
  job_memory_mib           = var.batch_job_memory_mib
  job_timeout_seconds      = var.batch_job_timeout_seconds
  retry_attempts           = var.batch_retry_attempts
  enable_gpu               = var.enable_gpu
  gpu_instance_types       = var.gpu_instance_types
  gpu_instance_profile_arn = module.iam.batch_instance_profile_arn
}

module "lambda" {
  source              = "./modules/lambda"
  name                = local.name
  handler_source_file = "${path.root}/../batch/lambda_handler.py"
  role_arn            = module.iam.lambda_role_arn
  queue_arn           = module.queue.queue_arn
  job_queue           = module.batch.job_queue_name
  job_definition      = module.batch.job_definition_name
  analysis_params     = var.analysis_params
  array_min_chunks    = var.batch_array_min_chunks
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.lambda_security_group_id
  kms_key_arn         = module.kms.key_arn
  log_retention_days  = var.log_retention_days
}
