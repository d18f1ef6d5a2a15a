variable "name" {
  description = "Name prefix (project-environment)."
  type        = string
}

variable "repositories" {
  description = "Repository short names."
  type        = list(string)
  default     = ["service", "batch"]
}

variable "kms_key_arn" {
  description = "KMS key for image encryption."
  type        = string
}

variable "keep_images" {
  description = "Number of images kept per repository."
  type        = number
  default     = 30
}
