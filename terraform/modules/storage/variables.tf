variable "bucket_name" {
  description = "Name of the raw video bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the main SQS queue that receives ObjectCreated events."
  type        = string
}

variable "video_prefix" {
  description = "Key prefix of uploaded videos."
  type        = string
  default     = "videos/"
}

variable "video_suffixes" {
  description = "Object key suffixes that trigger an analysis."
  type        = list(string)
  default     = [".mp4", ".MP4", ".mov", ".MOV", ".mkv", ".MKV", ".avi", ".AVI", ".webm", ".WEBM", ".m4v", ".M4V"]
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten/deleted object versions are removed."
  type        = number
  default     = 90
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a non-empty bucket (development only)."
  type        = bool
  default     = false
}
