# Copy to <environment>.tfvars and adjust. Usage: see README.md.
region      = "ap-northeast-2"
environment = "dev"

# Images are pushed with an immutable tag, e.g. the git commit SHA.
image_tag = "0123abc"

# Use an existing VPC instead of creating one:
# vpc_id             = "vpc-0123456789abcdef0"
# private_subnet_ids = ["subnet-0aaa...", "subnet-0bbb..."]
# public_subnet_ids  = ["subnet-0ccc...", "subnet-0ddd..."]

# Who may call the API on :8087 (Batch jobs are always allowed).
alb_ingress_cidrs = ["10.0.0.0/8"]

# HTTPS on :8087 with an ACM certificate (recommended whenever clients are outside the VPC).
# certificate_arn = "arn:aws:acm:ap-northeast-2:123456789012:certificate/..."
# domain_name     = "api.capstone.example.com"

# Optional bearer token for API writes, stored in Secrets Manager.
# api_token_secret_arn = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:capstone/dev/api-token-AbCdEf"

alarm_actions = []

batch_job_vcpu       = 4
batch_job_memory_mib = 16384
enable_gpu           = false

db_instance_class   = "db.t4g.medium"
db_multi_az         = false
deletion_protection = false
