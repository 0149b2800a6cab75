/**
 * Outputs of the cluster stack for the user and for the other parts of the project
 * (the DAGs, the pipeline tests): URLs, bucket names, EMR roles, settings locations.
 */
import { TerraformOutput } from "cdktf";
import { Construct } from "constructs";
import { NodeRole, PropError, UiAccess } from "./contract";

/** Properties of {@link ComputeOutputs}. */
export interface ComputeOutputsProps {
  /** `/<namePrefix>/<env>`: where the nodes' settings live (the `parameter_prefix` output). */
  readonly parameterPrefix: string;
  /** Where users open the UI (`ComputePlane.uiUrl`). */
  readonly uiUrl: string;
  /**
   * How users reach that URL, which the `ui_url` description tells them: through the
   * public load balancer, or only through `npm run ui` (SSM port forwarding).
   */
  readonly uiAccess: UiAccess;
  /** Load balancer URLs. */
  readonly loadBalancers: {
    readonly executionApiUrl: string;
    readonly flowerUrl?: string;
  };
  /** Buckets (satisfied by `aws_s3_bucket`). */
  readonly buckets: {
    readonly logs: { readonly bucket: string };
    readonly data: { readonly bucket: string };
    readonly artifacts: { readonly bucket: string };
  };
  /** EMR roles. */
  readonly iam: {
    readonly emrServiceRole: { readonly name: string; readonly arn: string };
    readonly emrInstanceProfile: { readonly name: string; readonly arn: string };
    /** IAM role per node role of the executor. */
    readonly nodeRoles: Readonly<Partial<Record<NodeRole, { readonly arn: string }>>>;
  };
  /** Secret ARN prefix (`arn:...:secret:<secretPrefix>/`). */
  readonly secretArnPrefix: string;
  /** Artifact URIs. */
  readonly artifacts: { readonly dagsUri: string; readonly sparkJobUri: string };
}

/** TerraformOutputs with stable names (no construct-path hash). */
export class ComputeOutputs extends Construct {
  public constructor(scope: Construct, id: string, props: ComputeOutputsProps) {
    super(scope, id);
    if (props.uiAccess !== "load-balancer" && props.uiAccess !== "port-forward") {
      throw new PropError(this, "uiAccess", props.uiAccess, '"load-balancer" or "port-forward"');
    }
    const out = (name: string, value: string, description: string): void => {
      new TerraformOutput(this, name, { value, description }).overrideLogicalId(name);
    };
    out(
      "ui_url",
      props.uiUrl,
      props.uiAccess === "port-forward"
        ? "Airflow UI and REST API through `npm run ui -- <env>` (SSM port forwarding; no uiAllowedCidrs)"
        : "Airflow UI and REST API (public ALB, open to config.uiAllowedCidrs)",
    );
    out(
      "execution_api_url",
      props.loadBalancers.executionApiUrl,
      "Execution API URL the workers use ([core] execution_api_server_url)",
    );
    if (props.loadBalancers.flowerUrl) {
      out(
        "flower_url",
        props.loadBalancers.flowerUrl,
        "Flower on the internal ALB (VPC only; reach it with an SSM port-forwarding session)",
      );
    }
    out("log_bucket", props.buckets.logs.bucket, "Bucket of remote task logs, EMR logs and ALB logs");
    out(
      "data_bucket",
      props.buckets.data.bucket,
      "Data bucket: champion/data/ input, champion/output/ results",
    );
    out(
      "artifacts_bucket",
      props.buckets.artifacts.bucket,
      "Artifacts bucket: dags/ and content-hashed spark-jobs/",
    );
    out(
      "dags_uri",
      props.artifacts.dagsUri,
      "S3 prefix of the deployed DAG files (synced onto EFS by the nodes)",
    );
    out("spark_job_uri", props.artifacts.sparkJobUri, "S3 URI of the content-hashed Spark sort job");
    out("emr_service_role_name", props.iam.emrServiceRole.name, "EMR service role (RunJobFlow ServiceRole)");
    out("emr_service_role_arn", props.iam.emrServiceRole.arn, "EMR service role ARN");
    out(
      "emr_instance_profile_name",
      props.iam.emrInstanceProfile.name,
      "EMR EC2 instance profile (RunJobFlow JobFlowRole)",
    );
    out("emr_instance_profile_arn", props.iam.emrInstanceProfile.arn, "EMR EC2 instance profile ARN");
    const roleArns = Object.fromEntries(
      Object.entries(props.iam.nodeRoles).map(([role, r]) => [role, r.arn]),
    );
    new TerraformOutput(this, "node_role_arns", {
      value: roleArns,
      description: "IAM role of each Airflow node role (api-server, scheduler, worker; or standalone)",
    }).overrideLogicalId("node_role_arns");
    out("parameter_prefix", props.parameterPrefix, "SSM parameter prefix of this cluster's settings");
    out("secret_arn_prefix", props.secretArnPrefix, "ARN prefix of this cluster's Secrets Manager secrets");
  }
}
