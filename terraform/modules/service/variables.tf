variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "image" {
  description = "Service image (repository URL and tag)."
  type        = string
}

variable "port" {
  description = "Container and listener port."
  type        = number
  default     = 8087
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks (and of an internal ALB)."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Subnets of an internet-facing ALB."
  type        = list(string)
  default     = []
}

variable "internal" {
  description = "Internal ALB (reachable from the VPC and peered networks only)."
  type        = bool
  default     = true
}

variable "alb_security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "service_security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener; null serves plain HTTP inside the VPC."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "DNS name that points at the ALB (used in the API URL)."
  type        = string
  default     = null
}

variable "execution_role_arn" {
  description = "Task execution role."
  type        = string
}

variable "task_role_arn" {
  description = "Task role."
  type        = string
}

variable "raw_bucket_name" {
  description = "Raw video bucket."
  type        = string
}

variable "db_secret_arn" {
  description = "Secret with the database connection settings."
  type        = string
}

variable "api_token_secret_arn" {
  description = "Optional secret with the API bearer token (CAPSTONE_API_TOKEN)."
  type        = string
  default     = null
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 8192
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 2
}

variable "deletion_protection" {
  description = "ALB deletion protection."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the service log group."
  type        = number
  default     = 365
}
