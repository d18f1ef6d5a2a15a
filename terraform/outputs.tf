output "raw_bucket_name" {
  description = "Raw video bucket (upload to videos/{video_id}/{filename})."
  value       = module.storage.bucket_name
}

output "queue_url" {
  description = "Main SQS queue URL (SQS_QUEUE_URL)."
  value       = module.queue.queue_url
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = module.queue.dlq_url
}

output "api_url" {
  description = "Base URL of the FastAPI service (FASTAPI_ENDPOINT)."
  value       = module.service.api_url
}

output "ecr_repository_urls" {
  description = "ECR repositories: service and batch."
  value       = module.ecr.repository_urls
}

output "batch_job_queue" {
  description = "Batch job queue the Lambda submits to (BATCH_JOB_QUEUE)."
  value       = module.batch.job_queue_name
}

output "batch_job_definition" {
  description = "Batch job definition the Lambda submits (BATCH_JOB_DEFINITION)."
  value       = module.batch.job_definition_name
}

output "db_secret_arn" {
  description = "Secrets Manager secret with the database connection settings (DB_SECRET_ARN)."
  value       = module.database.secret_arn
}

output "db_address" {
  description = "Database host name."
  value       = module.database.address
}

output "lambda_function_name" {
  description = "SQS-to-Batch Lambda function."
  value       = module.lambda.function_name
}
