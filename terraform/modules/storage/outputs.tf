output "bucket_name" {
  description = "Raw video bucket name."
  value       = aws_s3_bucket.raw.id
}

output "bucket_arn" {
  description = "Raw video bucket ARN."
  value       = aws_s3_bucket.raw.arn
}
