# AWS Batch: Fargate compute environment + job queue + job definition, and an optional GPU
# EC2 compute environment with its own queue and job definition.
#
# The job definition carries exactly four environment variables: SQS_QUEUE_URL,
# S3_BUCKET_RAW, FASTAPI_ENDPOINT, DB_SECRET_ARN. The mode (CAPSTONE_BATCH_MODE service |
# notebook | chunk | stitch) defaults to "service" in the image and is overridden per job at
# submit time: for a long video the Lambda submits this definition as an array job (children
# in mode "chunk", AWS_BATCH_JOB_ARRAY_INDEX = their chunk; they stage rows and hold no SQS
# message) plus a stitch job in mode "stitch" that dependsOn it and publishes. The retry
# strategy and timeout below apply to each child as to any job.
#
# Retries: Batch retries only infrastructure failures (lost host, image pull, ENI setup).
# Application failures exit, leave the SQS message undeleted, and SQS redelivery plus the
# dead-letter queue take over, so a poison video is not retried twice over.

data "aws_region" "current" {}

locals {
  log_configuration = {
    logDriver = "awslogs"
    options = {
      "awslogs-group"         = aws_cloudwatch_log_group.jobs.name
      "awslogs-region"        = data.aws_region.current.region
      "awslogs-stream-prefix" = "analysis"
    }
  }
}

resource "aws_cloudwatch_log_group" "jobs" {
  name              = "/aws/batch/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_batch_compute_environment" "fargate" {
  name = "${var.name}-fargate"
  type = "MANAGED"

  compute_resources {
    type               = "FARGATE"
    max_vcpus          = var.max_vcpus
    subnets            = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_batch_job_queue" "fargate" {
  name     = "${var.name}-analysis"
  state    = "ENABLED"
  priority = 10

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.fargate.arn
  }
}

resource "aws_batch_job_definition" "fargate" {
  name                  = "${var.name}-analysis"
  type                  = "container"
  platform_capabilities = ["FARGATE"]
  propagate_tags        = true

  retry_strategy {
    attempts = var.retry_attempts
    evaluate_on_exit {
      on_status_reason = "Host EC2*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_status_reason = "CannotPullContainerError*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_status_reason = "ResourceInitializationError*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "*"
      action    = "EXIT"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }

  container_properties = jsonencode({
    image            = var.image
    command          = ["python", "-m", "batch.process_video"]
    jobRoleArn       = var.job_role_arn
    executionRoleArn = var.execution_role_arn
    privileged       = false
    resourceRequirements = [
      { type = "VCPU", value = tostring(var.job_vcpu) },
      { type = "MEMORY", value = tostring(var.job_memory_mib) },
    ]
    environment = [
      { name = "SQS_QUEUE_URL", value = var.queue_url },
      { name = "S3_BUCKET_RAW", value = var.raw_bucket_name },
      { name = "FASTAPI_ENDPOINT", value = var.fastapi_endpoint },
      { name = "DB_SECRET_ARN", value = var.db_secret_arn },
    ]
    networkConfiguration         = { assignPublicIp = "DISABLED" }
    fargatePlatformConfiguration = { platformVersion = "LATEST" }
    ephemeralStorage             = { sizeInGiB = var.ephemeral_storage_gib }
    runtimePlatform              = { operatingSystemFamily = "LINUX", cpuArchitecture = "X86_64" }
    logConfiguration             = local.log_configuration
  })
}

# --- Optional GPU compute environment (EC2, NVIDIA AMI) ------------------------------------

resource "aws_batch_compute_environment" "gpu" {
  count = var.enable_gpu ? 1 : 0
  name  = "${var.name}-gpu"
  type  = "MANAGED"

  compute_resources {
    type                = "EC2"
    allocation_strategy = "BEST_FIT_PROGRESSIVE"
    instance_type       = var.gpu_instance_types
    min_vcpus           = 0
    max_vcpus           = var.gpu_max_vcpus
    instance_role       = var.gpu_instance_profile_arn
    subnets             = var.subnet_ids
    security_group_ids  = [var.security_group_id]

    ec2_configuration {
      image_type = "ECS_AL2023_NVIDIA"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_batch_job_queue" "gpu" {
  count    = var.enable_gpu ? 1 : 0
  name     = "${var.name}-analysis-gpu"
  state    = "ENABLED"
  priority = 10

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.gpu[0].arn
  }
}

resource "aws_batch_job_definition" "gpu" {
  count                 = var.enable_gpu ? 1 : 0
  name                  = "${var.name}-analysis-gpu"
  type                  = "container"
  platform_capabilities = ["EC2"]
  propagate_tags        = true

  retry_strategy {
    attempts = var.retry_attempts
    evaluate_on_exit {
      on_status_reason = "Host EC2*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_status_reason = "CannotPullContainerError*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "*"
      action    = "EXIT"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }

  container_properties = jsonencode({
    image            = var.image
    command          = ["python", "-m", "batch.process_video"]
    jobRoleArn       = var.job_role_arn
    executionRoleArn = var.execution_role_arn
    privileged       = false
    resourceRequirements = [
      { type = "VCPU", value = tostring(var.job_vcpu) },
      { type = "MEMORY", value = tostring(var.job_memory_mib) },
      { type = "GPU", value = "1" },
    ]
    environment = [
      { name = "SQS_QUEUE_URL", value = var.queue_url },
      { name = "S3_BUCKET_RAW", value = var.raw_bucket_name },
      { name = "FASTAPI_ENDPOINT", value = var.fastapi_endpoint },
      { name = "DB_SECRET_ARN", value = var.db_secret_arn },
    ]
    logConfiguration = local.log_configuration
  })
}
