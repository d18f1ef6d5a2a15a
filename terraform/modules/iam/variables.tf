variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "region" {
  description = "AWS region (for kms:ViaService conditions)."
  type        = string
}

variable "raw_bucket_arn" {
  description = "ARN of the raw video bucket."
  type        = string
}

variable "video_prefix" {
  description = "Key prefix of uploaded videos."
  type        = string
  default     = "videos/"
}

variable "queue_arn" {
  description = "ARN of the main SQS queue."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (the job moves permanent failures there at once)."
  type        = string
}

variable "db_secret_arn" {
  description = "ARN of the Secrets Manager secret with the database credentials."
  type        = string
}

variable "api_token_secret_arn" {
  description = "Optional Secrets Manager secret holding the API bearer token."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "ARN of the pipeline KMS key."
  type        = string
}

variable "job_queue_arns" {
  description = "Batch job queues the Lambda may submit to."
  type        = list(string)
}

variable "job_definition_arns" {
  description = "Batch job definition ARNs (or ARN patterns covering all revisions) the Lambda may submit."
  type        = list(string)
}

variable "batch_repository_arn" {
  description = "ECR repository of the Batch image."
  type        = string
}

variable "service_repository_arn" {
  description = "ECR repository of the service image."
  type        = string
}

variable "batch_log_group_arn" {
  description = "Log group of the Batch jobs."
  type        = string
}

variable "service_log_group_arn" {
  description = "Log group of the FastAPI service."
  type        = string
}

variable "lambda_log_group_arn" {
  description = "Log group of the Lambda function."
  type        = string
}

variable "enable_gpu" {
  description = "Create the instance role/profile for the GPU EC2 compute environment."
  type        = bool
  default     = false
}
