variable "region" {
  description = "AWS region."
  type        = string
  default     = "ap-northeast-2"
}

variable "project" {
  description = "Project name, used as the first part of every resource name."
  type        = string
  default     = "capstone"
}

variable "environment" {
  description = "Environment name (dev, staging, prod, ...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment: 2-16 characters, lower-case letters, digits and dashes."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- images ----------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the service and Batch images in ECR (tags are immutable: use the git SHA)."
  type        = string
}

# --- network ---------------------------------------------------------------------------------

variable "vpc_id" {
  description = "Existing VPC. null creates a VPC with public and private subnets and a NAT gateway."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Private subnets of the existing VPC (when vpc_id is set)."
  type        = list(string)
  default     = []
}

variable "public_subnet_ids" {
  description = "Public subnets of the existing VPC (only for an internet-facing ALB)."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zones of the created VPC (2 to 4). Empty: <region>a and <region>b."
  type        = list(string)
  default     = []
}

variable "alb_internal" {
  description = "Internal ALB (default). Set false for an internet-facing API (then set certificate_arn)."
  type        = bool
  default     = true
}

variable "alb_ingress_cidrs" {
  description = "Client CIDRs allowed to reach the API on port 8087 (Batch jobs are always allowed)."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate: serve HTTPS on :8087. null serves HTTP inside the VPC."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "DNS name of the API matching the certificate (used in api_url / FASTAPI_ENDPOINT)."
  type        = string
  default     = null
}

# --- storage and queue -----------------------------------------------------------------------

variable "raw_bucket_name" {
  description = "Name of the raw video bucket. null: <project>-<environment>-raw-<account id>."
  type        = string
  default     = null
}

variable "video_prefix" {
  description = "Key prefix of uploaded videos (videos/{video_id}/{filename})."
  type        = string
  default     = "videos/"
}

variable "video_suffixes" {
  description = "Key suffixes that trigger an analysis (S3 matching is case-sensitive)."
  type        = list(string)
  default     = [".mp4", ".MP4", ".mov", ".MOV", ".mkv", ".MKV", ".avi", ".AVI", ".webm", ".WEBM", ".m4v", ".M4V"]
}

variable "queue_visibility_timeout_seconds" {
  description = "Initial visibility of a video message; the job extends it while it runs."
  type        = number
  default     = 3600
}

variable "max_receive_count" {
  description = "Deliveries before a video message moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "alarm_actions" {
  description = "SNS topics notified by the queue alarms."
  type        = list(string)
  default     = []
}

# --- batch -----------------------------------------------------------------------------------

variable "batch_max_vcpus" {
  description = "Maximum vCPUs of the Fargate compute environment."
  type        = number
  default     = 64
}

variable "batch_job_vcpu" {
  description = "vCPUs per analysis job."
  type        = number
  default     = 4
}

variable "batch_job_memory_mib" {
  description = "Memory per analysis job (MiB)."
  type        = number
  default     = 16384
}

variable "batch_job_timeout_seconds" {
  description = "Hard time limit per job attempt."
  type        = number
  default     = 14400
}

variable "analysis_params" {
  description = "CAPSTONE_ANALYSIS_PARAMS (JSON) the Lambda splits by (chunk_s, default 60 s) and passes to every job it submits; \"\" for the defaults."
  type        = string
  default     = ""

  validation {
    condition     = var.analysis_params == "" || can(jsondecode(var.analysis_params))
    error_message = "analysis_params must be empty or a JSON object."
  }
}

variable "batch_array_min_chunks" {
  description = "A video of at least this many chunks runs as an AWS Batch array job (one child per chunk) plus a stitch job; shorter ones as one job."
  type        = number
  default     = 2

  validation {
    condition     = var.batch_array_min_chunks >= 2 && var.batch_array_min_chunks <= 10000
    error_message = "AWS Batch array jobs have 2..10000 children."
  }
}

variable "batch_retry_attempts" {
  description = "Batch attempts for infrastructure failures."
  type        = number
  default     = 3
}

variable "enable_gpu" {
  description = "Add a GPU EC2 compute environment; the Lambda then submits to the GPU queue."
  type        = bool
  default     = false
}

variable "gpu_instance_types" {
  description = "GPU instance types."
  type        = list(string)
  default     = ["g5.xlarge", "g5.2xlarge"]
}

# --- service ---------------------------------------------------------------------------------

variable "service_desired_count" {
  description = "Number of FastAPI tasks."
  type        = number
  default     = 2
}

variable "service_cpu" {
  description = "CPU units per FastAPI task."
  type        = number
  default     = 2048
}

variable "service_memory" {
  description = "Memory per FastAPI task (MiB)."
  type        = number
  default     = 8192
}

variable "api_token_secret_arn" {
  description = "Optional Secrets Manager secret holding the API bearer token."
  type        = string
  default     = null
}

# --- database --------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "RDS PostgreSQL version (16 or newer)."
  type        = string
  default     = "16.8"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial database storage (GiB)."
  type        = number
  default     = 50
}

variable "db_multi_az" {
  description = "Multi-AZ database."
  type        = bool
  default     = true
}

# --- protection ------------------------------------------------------------------------------

variable "deletion_protection" {
  description = "Deletion protection for the database and the ALB."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 365
}
