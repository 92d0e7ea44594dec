//! AWS Secrets Manager (`aws-sm://`) and SSM Parameter Store (`aws-ssm://`).
