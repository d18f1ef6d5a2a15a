variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the DB subnet group (two or more AZs)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the database."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the secret."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version (16 or newer; pgvector ships with RDS PostgreSQL)."
  type        = string
  default     = "16.8"

  validation {
    condition     = tonumber(split(".", var.engine_version)[0]) >= 16
    error_message = "PostgreSQL 16 or newer is required."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 50
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "multi_az" {
  description = "Run a synchronous standby in a second AZ."
  type        = bool
  default     = true
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "capstone"
}

variable "username" {
  description = "Master user name."
  type        = string
  default     = "capstone"
}

variable "allowed_extensions" {
  description = "Extensions that may be created (rds.allowed_extensions)."
  type        = list(string)
  default     = ["vector", "pg_trgm", "btree_gin", "btree_gist", "pg_stat_statements", "pgcrypto", "uuid-ossp"]

  validation {
    condition     = contains(var.allowed_extensions, "vector")
    error_message = "pgvector (\"vector\") must be allowed."
  }
}

variable "backup_retention_days" {
  description = "Automated backup retention."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Protect the instance from deletion."
  type        = bool
  default     = true
}
