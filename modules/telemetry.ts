/**
 * Telemetry of the nodes: the CloudWatch agent's configuration, as the contract-named SSM
 * parameter `<parameterPrefix>/cloudwatch-agent`, and the log groups it ships to.
 *
 * - Logs: one log group per component (`<parameterPrefix>/airflow/<component>`, see
 *   {@link componentLogGroupName}), retention from the config, encrypted with the cluster
 *   key. Each systemd service appends to `<logDir>/<component>.log` (the agent reads files,
 *   not journald); the bootstrap's first boot is cloud-init's log. The groups exist before
 *   any node writes, so nodes need no logs:CreateLogGroup.
 * - Metrics: the agent's statsd listener takes Airflow's `[metrics]` output and publishes it
 *   into {@link airflowMetricsNamespace} as a dimensionless rollup (`omit_hostname` and
 *   `aggregation_dimensions: [[]]`): one cluster-wide series per metric name, which is what
 *   the alarms read and what survives node replacement. The agent may also publish the
 *   series it tags with the statsd type; `npm run cost` prices both. `metric_separator: "."` keeps the
 *   statsd name (`airflow.scheduler_heartbeat`) as the CloudWatch metric name.
 */
import { CloudwatchLogGroup } from "@cdktf/provider-aws/lib/cloudwatch-log-group";
import { SsmParameter } from "@cdktf/provider-aws/lib/ssm-parameter";
import { Construct } from "constructs";
import { skipCheckovAll, skipShortLogRetention } from "./checkov";
import {
  BOOTSTRAP_LOG_COMPONENT,
  CLOUDWATCH_AGENT,
  NodeRole,
  PropError,
  airflowMetricsNamespace,
  componentLogGroupName,
  logComponents,
} from "./contract";

/** Where cloud-init writes user-data's output, hence the bootstrap's first run. */
export const CLOUD_INIT_OUTPUT_LOG = "/var/log/cloud-init-output.log";

/** SSM Standard tier holds at most 4 KB; Advanced would cost $0.05 a month per parameter. */
export const STANDARD_PARAMETER_MAX_BYTES = 4096;

/** Seconds over which the agent aggregates statsd samples into one datapoint (the alarms' period). */
export const STATSD_AGGREGATION_SECONDS = 60;

/** Inputs of {@link cloudwatchAgentConfig}. */
export interface AgentConfigInputs {
  /** CloudWatch namespace of the statsd metrics. */
  readonly namespace: string;
  /** Log group name per component. */
  readonly logGroups: Readonly<Record<string, string>>;
}

/** The file a component's log is read from. */
export function componentLogFile(component: string): string {
  return component === BOOTSTRAP_LOG_COMPONENT
    ? CLOUD_INIT_OUTPUT_LOG
    : `${CLOUDWATCH_AGENT.logDir}/${component}.log`;
}

/** The agent's JSON configuration (the parameter's value), as an object. */
export function cloudwatchAgentConfig(i: AgentConfigInputs): Record<string, unknown> {
  const { host, port } = CLOUDWATCH_AGENT.statsd;
  return {
    // No `host` dimension: per-node series would multiply the custom metrics by the node
    // count and vanish with each replaced node.
    agent: { omit_hostname: true },
    logs: {
      logs_collected: {
        files: {
          collect_list: Object.entries(i.logGroups)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([component, group]) => ({
              file_path: componentLogFile(component),
              log_group_name: group,
              log_stream_name: "{instance_id}",
            })),
        },
      },
    },
    metrics: {
      namespace: i.namespace,
      aggregation_dimensions: [[]],
      metrics_collected: {
        statsd: {
          service_address: `${host}:${port}`,
          metrics_collection_interval: 10,
          metrics_aggregation_interval: STATSD_AGGREGATION_SECONDS,
          metric_separator: ".",
        },
      },
    },
  };
}

/** Props of {@link ClusterTelemetry}. */
export interface ClusterTelemetryProps {
  /** `<namePrefix>-<env>`: the metrics namespace. */
  readonly resourcePrefix: string;
  /** `/<namePrefix>/<env>`: the parameter's path and the log groups' prefix. */
  readonly parameterPrefix: string;
  /** The node roles of the executor: their components get log groups. */
  readonly nodeRoles: readonly NodeRole[];
  /** Days the log groups keep events (a CloudWatch Logs retention value). */
  readonly logRetentionDays: number;
  /** Cluster KMS key ARN: encrypts the log groups. */
  readonly kmsKeyArn: string;
}

/** The component log groups and the agent configuration parameter. */
export class ClusterTelemetry extends Construct {
  /** Log group per component. */
  public readonly logGroups: Readonly<Record<string, CloudwatchLogGroup>>;
  /** The agent's configuration parameter (`ssm:<name>` for fetch-config). */
  public readonly agentParameter: SsmParameter;
  /** The agent's configuration, as stored in {@link agentParameter}. */
  public readonly agentConfig: Record<string, unknown>;

  public constructor(scope: Construct, id: string, props: ClusterTelemetryProps) {
    super(scope, id);
    if (!/^(\/[A-Za-z0-9._-]+)+$/.test(props.parameterPrefix)) {
      throw new PropError(this, "parameterPrefix", props.parameterPrefix, "an SSM path such as /airflow/dev");
    }
    if (props.nodeRoles.length === 0) {
      throw new PropError(this, "nodeRoles", props.nodeRoles, "at least one node role");
    }
    const components = [...new Set(props.nodeRoles.flatMap((r) => logComponents(r)))].sort();
    const groups: Record<string, CloudwatchLogGroup> = {};
    const names: Record<string, string> = {};
    for (const component of components) {
      names[component] = componentLogGroupName(props.parameterPrefix, component);
      groups[component] = new CloudwatchLogGroup(this, `log-${component}`, {
        name: names[component],
        retentionInDays: props.logRetentionDays,
        kmsKeyId: props.kmsKeyArn,
      });
      skipShortLogRetention(groups[component], props.logRetentionDays);
    }
    this.logGroups = groups;
    this.agentConfig = cloudwatchAgentConfig({
      namespace: airflowMetricsNamespace(props.resourcePrefix),
      logGroups: names,
    });
    const value = JSON.stringify(this.agentConfig);
    if (Buffer.byteLength(value) > STANDARD_PARAMETER_MAX_BYTES) {
      throw new PropError(
        this,
        "agent configuration",
        `${Buffer.byteLength(value)} bytes`,
        `at most ${STANDARD_PARAMETER_MAX_BYTES} bytes (an SSM Standard parameter)`,
      );
    }
    this.agentParameter = new SsmParameter(this, "agent-config", {
      name: `${props.parameterPrefix}/${CLOUDWATCH_AGENT.parameter}`,
      type: "String",
      insecureValue: value,
      description: "CloudWatch agent configuration: component log files and Airflow's statsd metrics",
    });
    skipCheckovAll(this.agentParameter, {
      CKV2_AWS_34: "Log file paths, log group names and a metrics namespace: nothing secret to encrypt",
    });
  }
}
