/**
 * Telemetry: one encrypted log group per component with the configured retention, and the
 * CloudWatch agent configuration under the contract's parameter name that ships exactly
 * those components' files and publishes statsd where the alarms read it.
 */
import { Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { CLOUDWATCH_AGENT, EXECUTOR_ROLES, NodeRole, airflowMetricsNamespace } from "../../modules/contract";
import { ClusterTelemetry, ClusterTelemetryProps } from "../../modules/telemetry";
import { Block, config, resources } from "./helpers";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/test";
const PROPS: ClusterTelemetryProps = {
  resourcePrefix: "airflow-dev",
  parameterPrefix: "/airflow/dev",
  nodeRoles: EXECUTOR_ROLES.CeleryExecutor,
  logRetentionDays: 30,
  kmsKeyArn: KEY,
};

interface AgentConfig {
  agent: { omit_hostname: boolean };
  logs: {
    logs_collected: {
      files: { collect_list: { file_path: string; log_group_name: string; log_stream_name: string }[] };
    };
  };
  metrics: {
    namespace: string;
    aggregation_dimensions: string[][];
    metrics_collected: { statsd: Record<string, unknown> };
  };
}

function synth(props: Partial<ClusterTelemetryProps> = {}): { groups: Block[]; parameter: Block } {
  const out = Testing.synthScope((scope) => {
    new ClusterTelemetry(scope, "telemetry", { ...PROPS, ...props });
  });
  const parameters = Object.values(resources(out, "aws_ssm_parameter"));
  expect(parameters).toHaveLength(1);
  return { groups: Object.values(resources(out, "aws_cloudwatch_log_group")), parameter: parameters[0] };
}

const agentConfig = (parameter: Block): AgentConfig => JSON.parse(parameter.insecure_value as string);

describe("ClusterTelemetry", () => {
  test.each([
    [
      "CeleryExecutor",
      EXECUTOR_ROLES.CeleryExecutor,
      [
        "api-server",
        "bootstrap",
        "celery-worker",
        "dag-processor",
        "dag-sync",
        "flower",
        "health",
        "queue-depth",
        "scheduler",
        "triggerer",
        "worker-drain",
        "worker-protect",
      ],
    ],
    [
      "LocalExecutor",
      EXECUTOR_ROLES.LocalExecutor,
      ["api-server", "bootstrap", "dag-processor", "dag-sync", "health", "scheduler", "triggerer"],
    ],
  ])("%s: one encrypted log group per component, with the configured retention", (_, roles, components) => {
    const { groups } = synth({ nodeRoles: roles as NodeRole[] });
    expect(groups.map((g) => g.name).sort()).toEqual(components.map((c) => `/airflow/dev/airflow/${c}`));
    for (const g of groups) {
      expect(g.retention_in_days).toBe(30);
      expect(g.kms_key_id).toBe(KEY);
    }
  });

  test("the agent configuration sits under the contract's parameter name, as a plain String", () => {
    const { parameter } = synth();
    expect(parameter.name).toBe(`/airflow/dev/${CLOUDWATCH_AGENT.parameter}`);
    expect(parameter.type).toBe("String");
    expect(Buffer.byteLength(parameter.insecure_value as string)).toBeLessThanOrEqual(4096);
  });

  test("it ships each component's log file into that component's group, once", () => {
    const { groups, parameter } = synth();
    const list = agentConfig(parameter).logs.logs_collected.files.collect_list;
    expect(list.map((f) => f.log_group_name).sort()).toEqual(groups.map((g) => g.name).sort());
    for (const f of list) {
      const component = f.log_group_name.split("/").pop() as string;
      expect(f.file_path).toBe(
        component === "bootstrap"
          ? "/var/log/cloud-init-output.log"
          : `${CLOUDWATCH_AGENT.logDir}/${component}.log`,
      );
      expect(f.log_stream_name).toBe("{instance_id}");
    }
  });

  test("statsd: the contract's listener, one dimensionless series per metric in the cluster namespace", () => {
    const metrics = agentConfig(synth().parameter).metrics;
    expect(metrics.namespace).toBe(airflowMetricsNamespace("airflow-dev"));
    expect(metrics.aggregation_dimensions).toEqual([[]]);
    expect(metrics.metrics_collected.statsd).toMatchObject({
      service_address: `${CLOUDWATCH_AGENT.statsd.host}:${CLOUDWATCH_AGENT.statsd.port}`,
      metrics_aggregation_interval: 60,
      metric_separator: ".",
    });
    expect(agentConfig(synth().parameter).agent.omit_hostname).toBe(true);
  });

  test("in the cluster stack, the Airflow alarms read the namespace the agent publishes into", () => {
    const stack = new AirflowClusterStack(Testing.app(), "airflow-dev", { config: config() });
    const out = Testing.synth(stack);
    const parameter = Object.values(resources(out, "aws_ssm_parameter")).find((p) =>
      (p.name as string).endsWith(`/${CLOUDWATCH_AGENT.parameter}`),
    ) as Block;
    const namespace = agentConfig(parameter).metrics.namespace;
    const airflowAlarms = Object.values(resources(out, "aws_cloudwatch_metric_alarm")).filter((a) =>
      (a.alarm_name as string).includes("-airflow-"),
    );
    expect(airflowAlarms.length).toBeGreaterThan(0);
    for (const a of airflowAlarms) {
      // a Metrics Insights alarm (queued-too-long, over every queue) names it in its query
      const [query] = (a.metric_query as { expression: string; period: number }[] | undefined) ?? [];
      expect(query ? /SCHEMA\("([^"]+)"/.exec(query.expression)?.[1] : a.namespace).toBe(namespace);
      expect(a.dimensions).toBeUndefined();
      expect(query?.period ?? a.period).toBe(60);
    }
  });

  test.each([
    [{ nodeRoles: [] }, "nodeRoles: got []; allowed: at least one node role"],
    [{ parameterPrefix: "airflow/dev" }, 'parameterPrefix: got "airflow/dev"; allowed: an SSM path'],
    [{ parameterPrefix: `/${"x".repeat(400)}` }, 'agent configuration: got "'],
  ])("bad props fail in one line naming the field: %j", (props, message) => {
    expect(() => synth(props as Partial<ClusterTelemetryProps>)).toThrow(message);
  });
});
