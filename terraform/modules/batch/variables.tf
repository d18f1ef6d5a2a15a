variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "image" {
  description = "Batch image (repository URL and tag)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the jobs."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the jobs."
  type        = string
}

variable "job_role_arn" {
  description = "Task role of the analysis job."
  type        = string
}

variable "execution_role_arn" {
  description = "Execution role of the analysis job."
  type        = string
}

variable "queue_url" {
  description = "SQS_QUEUE_URL for the job."
  type        = string
}

variable "raw_bucket_name" {
  description = "S3_BUCKET_RAW for the job."
  type        = string
}

variable "fastapi_endpoint" {
  description = "FASTAPI_ENDPOINT for the job (base URL of the service behind the ALB)."
  type        = string
}

variable "db_secret_arn" {
  description = "DB_SECRET_ARN for the job."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the job log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the job log group."
  type        = number
  default     = 365
}

variable "max_vcpus" {
  description = "Maximum vCPUs of the Fargate compute environment."
  type        = number
  default     = 64
}

variable "job_vcpu" {
  description = "vCPUs per job (Fargate: 0.25, 0.5, 1, 2, 4, 8, 16)."
  type        = number
  default     = 4
}

variable "job_memory_mib" {
  description = "Memory per job in MiB (must match a Fargate vCPU/memory combination)."
  type        = number
  default     = 16384
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage per job (the video is downloaded there)."
  type        = number
  default     = 100
}

variable "retry_attempts" {
  description = "Batch attempts for infrastructure failures (1..10)."
  type        = number
  default     = 3
}

variable "job_timeout_seconds" {
  description = "Hard limit per attempt."
  type        = number
  default     = 14400
}

variable "enable_gpu" {
  description = "Create the GPU EC2 compute environment, queue and job definition."
  type        = bool
  default     = false
}

variable "gpu_instance_types" {
  description = "Instance types of the GPU compute environment."
  type        = list(string)
  default     = ["g5.xlarge", "g5.2xlarge"]
}

variable "gpu_max_vcpus" {
  description = "Maximum vCPUs of the GPU compute environment."
  type        = number
  default     = 32
}

variable "gpu_instance_profile_arn" {
  description = "Instance profile for the GPU container instances."
  type        = string
  default     = null
}
