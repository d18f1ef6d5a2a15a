output "address" {
  description = "Database host name."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Database port."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "Database name."
  value       = var.db_name
}

output "secret_arn" {
  description = "ARN of the Secrets Manager secret with the connection settings."
  value       = aws_secretsmanager_secret.db.arn
}
