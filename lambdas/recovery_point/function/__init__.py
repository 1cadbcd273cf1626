"""The backup job: quiesced recovery points from the node, kept by AWS Backup."""
