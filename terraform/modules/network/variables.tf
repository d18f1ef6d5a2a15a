variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "region" {
  description = "AWS region (for the S3 gateway endpoint)."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC to use. null creates a new VPC."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Private subnets of the existing VPC (ECS, Batch, Lambda, RDS). Ignored when a VPC is created."
  type        = list(string)
  default     = []
}

variable "public_subnet_ids" {
  description = "Public subnets of the existing VPC (internet-facing ALB only). Ignored when a VPC is created."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR block of the created VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zones of the created VPC (two or more). Empty: <region>a and <region>b."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4)
    error_message = "Give 2 to 4 availability zones (RDS and the ALB need at least 2)."
  }
}

variable "service_port" {
  description = "Port of the FastAPI service and its ALB listener."
  type        = number
  default     = 8087
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks of API clients allowed to reach the ALB. Batch jobs are always allowed."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for the flow-log log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the flow-log log group."
  type        = number
  default     = 365
}
