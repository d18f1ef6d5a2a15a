variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "handler_source_file" {
  description = "Path of batch/lambda_handler.py."
  type        = string
}

variable "role_arn" {
  description = "Execution role of the function."
  type        = string
}

variable "queue_arn" {
  description = "Main SQS queue (event source)."
  type        = string
}

variable "job_queue" {
  description = "BATCH_JOB_QUEUE: name or ARN of the Batch job queue."
  type        = string
}

variable "job_definition" {
  description = "BATCH_JOB_DEFINITION: name of the Batch job definition."
  type        = string
}

variable "analysis_params" {
  description = "CAPSTONE_ANALYSIS_PARAMS (JSON): chunk_s sets the split; passed to every job when set."
  type        = string
  default     = ""
}

variable "array_min_chunks" {
  description = "CAPSTONE_BATCH_ARRAY_MIN_CHUNKS: fewest chunks that make an array job."
  type        = number
  default     = 2
}

variable "subnet_ids" {
  description = "Private subnets of the function."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the function."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for environment variables and the log group."
  type        = string
}

variable "timeout_seconds" {
  description = "Function timeout; the queue visibility timeout must be at least 6x this."
  type        = number
  default     = 60
}

variable "reserved_concurrency" {
  description = "Reserved concurrency and SQS maximum concurrency (>= 2)."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "Retention of the function log group."
  type        = number
  default     = 365
}
