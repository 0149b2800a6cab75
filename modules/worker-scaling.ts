/**
 * Worker autoscaling on the Airflow queue: target tracking on the scheduler nodes'
 * `WorkersNeeded` signal (`ceil((running + queued) / worker_concurrency)`, the Helm chart's
 * KEDA query; settings contract `workerScaling`), plus a step policy that starts the first
 * worker when the fleet is at zero.
 *
 * Target tracking needs a per-instance metric (doubling the fleet must halve it), so it
 * tracks WorkersNeeded / GroupInServiceInstances at a target of 1: desired = in-service x
 * (needed / in-service) / 1 = needed. At zero in-service workers that quotient has no
 * value and target tracking multiplies the current capacity (0) anyway, so it can never
 * leave zero; the step policy adds one worker when work is queued and the group's desired
 * capacity is 0, and target tracking takes over from there.
 */
import { AutoscalingPolicy } from "@cdktf/provider-aws/lib/autoscaling-policy";
import { CloudwatchMetricAlarm } from "@cdktf/provider-aws/lib/cloudwatch-metric-alarm";
import { Construct } from "constructs";
import { HasName, WORKER_SCALING, airflowMetricsNamespace } from "./contract";

/** Seconds between the publisher's datapoints (airflow-queue-depth.timer). */
export const SIGNAL_PERIOD_SECONDS = 60;

/** Properties of {@link WorkerScaling}. */
export interface WorkerScalingProps {
  /** `<namePrefix>-<env>`: the signal's namespace and the policies' name prefix. */
  readonly resourcePrefix: string;
  /** The worker Auto Scaling group (its group metrics must be enabled). */
  readonly group: HasName;
  /**
   * Add the step policy that starts the first worker from zero (the group's min is 0).
   * @default false
   */
  readonly scaleFromZero?: boolean;
}

/** The worker group's queue-depth policies. */
export class WorkerScaling extends Construct {
  /** Target tracking: desired = WorkersNeeded of the workers' queue. */
  public readonly tracking: AutoscalingPolicy;
  /** Step policy adding the first worker (when `scaleFromZero`). */
  public readonly fromZero?: AutoscalingPolicy;
  /** The alarm that runs {@link fromZero}. */
  public readonly fromZeroAlarm?: CloudwatchMetricAlarm;

  public constructor(scope: Construct, id: string, props: WorkerScalingProps) {
    super(scope, id);
    const needed = {
      namespace: airflowMetricsNamespace(props.resourcePrefix),
      metricName: WORKER_SCALING.metricName,
      dimensions: [{ name: WORKER_SCALING.queueDimension, value: WORKER_SCALING.queue }],
    };
    const groupMetric = (metricName: string) => ({
      namespace: "AWS/AutoScaling",
      metricName,
      dimensions: [{ name: "AutoScalingGroupName", value: props.group.name }],
    });
    this.tracking = new AutoscalingPolicy(this, "queue-depth", {
      name: `${props.resourcePrefix}-worker-queue-depth`,
      autoscalingGroupName: props.group.name,
      policyType: "TargetTrackingScaling",
      targetTrackingConfiguration: {
        customizedMetricSpecification: {
          metrics: [
            // Every scheduler publishes the same value: Maximum reads it once.
            { id: "needed", metricStat: { metric: needed, stat: "Maximum" }, returnData: false },
            {
              id: "inservice",
              metricStat: { metric: groupMetric("GroupInServiceInstances"), stat: "Average" },
              returnData: false,
            },
            {
              id: "perworker",
              expression: "needed / inservice",
              label: "WorkersNeeded per in-service worker",
              returnData: true,
            },
          ],
        },
        targetValue: 1,
      },
    });
    if (!props.scaleFromZero) return;
    this.fromZero = new AutoscalingPolicy(this, "from-zero", {
      name: `${props.resourcePrefix}-worker-from-zero`,
      autoscalingGroupName: props.group.name,
      policyType: "StepScaling",
      // +1, not "exactly 1": should the alarm fire while target tracking already scaled
      // out (group metrics lag a minute), this over-provisions by one instead of scaling in.
      adjustmentType: "ChangeInCapacity",
      metricAggregationType: "Maximum",
      stepAdjustment: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
    });
    this.fromZeroAlarm = new CloudwatchMetricAlarm(this, "from-zero-alarm", {
      alarmName: `${props.resourcePrefix}-worker-from-zero`,
      alarmDescription: "Work is queued and the worker group is at zero: start one worker",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // No signal means no scheduler is publishing: nothing to start a worker for.
      treatMissingData: "notBreaching",
      metricQuery: [
        {
          id: "needed",
          metric: { ...metricFields(needed), period: SIGNAL_PERIOD_SECONDS, stat: "Maximum" },
          returnData: false,
        },
        {
          id: "desired",
          metric: {
            ...metricFields(groupMetric("GroupDesiredCapacity")),
            period: SIGNAL_PERIOD_SECONDS,
            stat: "Maximum",
          },
          returnData: false,
        },
        {
          id: "start",
          expression: "IF(needed >= 1 AND desired == 0, 1, 0)",
          label: "work queued at zero workers",
          returnData: true,
        },
      ],
      alarmActions: [this.fromZero.arn],
    });
  }
}

/** A metric as an alarm's metric query spells it (dimensions as a map). */
function metricFields(m: {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: readonly { readonly name: string; readonly value: string }[];
}): { namespace: string; metricName: string; dimensions: Record<string, string> } {
  return {
    namespace: m.namespace,
    metricName: m.metricName,
    dimensions: Object.fromEntries(m.dimensions.map((d) => [d.name, d.value])),
  };
}
