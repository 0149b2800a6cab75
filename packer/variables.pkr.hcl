variable "region" {
  type        = string
  description = "AWS region the AMI is built in (and registered to)."
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as us-east-1."
  }
}

variable "architecture" {
  type        = string
  description = "CPU architecture of the AMI: x86_64 (default) or arm64 (Graviton)."
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "instance_type" {
  type        = string
  description = "Builder instance type; empty picks t3.medium (x86_64) or t4g.medium (arm64). Must match the architecture."
  default     = ""
  validation {
    condition     = var.instance_type == "" || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be empty or an EC2 instance type such as t3.medium."
  }
}

variable "airflow_version" {
  type        = string
  description = "Apache Airflow version pinned in requirements.lock; named in the AMI name and tags, checked by the validate step."
  default     = "3.3.2"
  validation {
    condition     = can(regex("^3\\.[0-9]+\\.[0-9]+$", var.airflow_version))
    error_message = "The airflow_version must be an Airflow 3 release such as 3.3.2."
  }
}

variable "project" {
  type        = string
  description = "Project tag of the AMI, its snapshots and the builder: the cluster's namePrefix (config default airflow, the stack's Project tag), so cost reports do not split the image from the stack. Pass -var project=<namePrefix> when the config sets another."
  default     = "airflow"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.project))
    error_message = "The project must be a namePrefix: lowercase letters, digits and '-', 2-12 characters, starting with a letter."
  }
}

variable "git_revision" {
  type        = string
  description = "Git commit the image is built from (tagged on the AMI); pass -var git_revision=$(git rev-parse HEAD)."
  default     = "unknown"
  validation {
    condition     = var.git_revision == "unknown" || can(regex("^[0-9a-f]{7,40}$", var.git_revision))
    error_message = "The git_revision must be a 7-40 character hex commit id (or 'unknown')."
  }
}

variable "worker_stop_timeout" {
  type        = number
  description = "Seconds systemd waits for a Celery worker's warm shutdown (running tasks finish) before SIGKILL; the infra sets the termination hook to this + 300 s (the AMI's WorkerStopTimeout tag)."
  default     = 3600
  validation {
    condition     = var.worker_stop_timeout >= 60 && var.worker_stop_timeout <= 6900 && floor(var.worker_stop_timeout) == var.worker_stop_timeout
    error_message = "The worker_stop_timeout must be a whole number of seconds from 60 to 6900 (the drain hook waits 300 s more, and a lifecycle hook waits at most 7200 s)."
  }
}

variable "root_volume_size_gb" {
  type        = number
  description = "Size of the encrypted gp3 root volume in GiB (the venv takes about 1.5 GiB); node root volumes (config rootVolumeGb) cannot be smaller."
  default     = 20
  validation {
    condition     = var.root_volume_size_gb >= 20 && var.root_volume_size_gb <= 500
    error_message = "The root_volume_size_gb must be from 20 to 500."
  }
}

variable "kms_key_id" {
  type        = string
  description = "KMS key (id, ARN or alias ARN) that encrypts the root volume and AMI snapshot; empty uses the account's aws/ebs key."
  default     = ""
  validation {
    condition     = var.kms_key_id == "" || can(regex("^(arn:aws[a-z-]*:kms:|alias/|[0-9a-f-]{36}$)", var.kms_key_id))
    error_message = "The kms_key_id must be empty, a key id, an alias/... name or a KMS ARN."
  }
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the builder instance; empty uses the default VPC."
  default     = ""
  validation {
    condition     = var.subnet_id == "" || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "The subnet_id must be empty or a subnet id (subnet-...)."
  }
}

variable "ssh_interface" {
  type        = string
  description = "How Packer reaches the builder: session_manager (default: no inbound SSH, private subnets work) or public_ip/private_ip/public_dns/private_dns."
  default     = "session_manager"
  validation {
    condition     = contains(["session_manager", "public_ip", "private_ip", "public_dns", "private_dns"], var.ssh_interface)
    error_message = "The ssh_interface must be one of session_manager, public_ip, private_ip, public_dns, private_dns."
  }
}

variable "iam_instance_profile" {
  type        = string
  description = "Instance profile of the builder (needs AmazonSSMManagedInstanceCore for session_manager); empty makes Packer create a temporary one with just the SSM permissions."
  default     = ""
  validation {
    condition     = var.iam_instance_profile == "" || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.iam_instance_profile))
    error_message = "The iam_instance_profile must be empty or an instance profile name."
  }
}
