variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for SQS server-side encryption."
  type        = string
}

variable "source_bucket_arn" {
  description = "ARN of the raw bucket allowed to send ObjectCreated events."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "Initial visibility timeout of the main queue; the Batch job extends it while it runs."
  type        = number
  default     = 3600

  validation {
    condition     = var.visibility_timeout_seconds >= 900 && var.visibility_timeout_seconds <= 43200
    error_message = "Use 900..43200 s: shorter than 15 min would redeliver analyses that are still running."
  }
}

variable "message_retention_seconds" {
  description = "Retention of the main queue."
  type        = number
  default     = 345600
}

variable "max_receive_count" {
  description = "Deliveries before a message moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm threshold for the age of the oldest message in the main queue."
  type        = number
  default     = 21600
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the queue alarms."
  type        = list(string)
  default     = []
}
