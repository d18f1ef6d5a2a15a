# SQS -> Lambda -> AWS Batch. The function is batch/lambda_handler.py packaged as a single
# file, so its handler string is "lambda_handler.handler" (it may only import the standard
# library and boto3). Partial batch failures are reported per message
# (ReportBatchItemFailures): only the failed messages return to the queue.
#
# Long videos: the function HEADs the object (x-amz-meta-duration, written by the upload
# route) and submits an array job (one child per chunk of chunk_s seconds, mode "chunk") plus
# a stitch job that dependsOn it (mode "stitch", publishes); shorter videos, objects without
# the metadata, or a failed HEAD get the single job as before.

data "archive_file" "handler" {
  type        = "zip"
  source_file = var.handler_source_file
  output_path = "${path.root}/.terraform/build/${var.name}-lambda_handler.zip"
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}-submit-job"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "submit_job" {
  function_name                  = "${var.name}-submit-job"
  description                    = "Submits the AWS Batch analysis job(s) of each uploaded video"
  role                           = var.role_arn
  runtime                        = "python3.12"
  handler                        = "lambda_handler.handler"
  filename                       = data.archive_file.handler.output_path
  source_code_hash               = data.archive_file.handler.output_base64sha256
  timeout                        = var.timeout_seconds
  memory_size                    = 256
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = {
      BATCH_JOB_QUEUE                 = var.job_queue
      BATCH_JOB_DEFINITION            = var.job_definition
      CAPSTONE_ANALYSIS_PARAMS        = var.analysis_params
      CAPSTONE_BATCH_ARRAY_MIN_CHUNKS = tostring(var.array_min_chunks)
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }
}

resource "aws_lambda_event_source_mapping" "queue" {
  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.submit_job.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.reserved_concurrency
  }
}
