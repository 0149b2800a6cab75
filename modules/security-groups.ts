/**
 * Least-privilege security groups, one per role, with every rule a separate resource
 * carrying a description of why it exists. Data stores accept only the Airflow node
 * groups; the api-server accepts only its load balancers; Flower is reachable only
 * through the internal load balancer; there is no SSH rule anywhere (operators use SSM
 * Session Manager, whose agent dials out over 443).
 *
 * Node egress: 443 to anywhere is the one broad rule. Nodes call AWS APIs (SSM, Secrets
 * Manager, CloudWatch, EMR, SES, STS) through the NAT; S3 goes through the gateway
 * endpoint but its public IP ranges are still "anywhere" to a security group. A
 * prefix-list or interface-endpoint design would narrow it at ~$7/endpoint/AZ/month.
 * Everything else is SG-to-SG on the exact port.
 *
 * The rules are a table ({@link securityGroupRules}): a link row `{ from, to, port, why }`
 * becomes an egress rule on `from` and an ingress rule on `to`; a CIDR row becomes one
 * rule. Adding a rule is adding a row. A row that names a group the executor does not
 * create (the worker, broker and internal load balancer exist only with CeleryExecutor)
 * is skipped, so the table holds every rule of every mode once.
 */
import { Construct } from "constructs";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { DatabaseEngine, PORTS, PropError } from "./contract";

/** Each group's role, which its description states. */
const GROUP_PURPOSE = {
  "alb-public": "public UI load balancer",
  "api-server": "Airflow api-server and Flower nodes",
  scheduler: "Airflow scheduler, dag-processor and triggerer nodes",
  database: "Airflow metadata database",
  efs: "EFS mount targets for DAGs and plugins",
  "alb-internal": "internal load balancer (Execution API, Flower)",
  worker: "Airflow Celery worker nodes",
  redis: "Celery broker (ElastiCache)",
} as const;

/** A security group by role: its construct id and the `<prefix>-<key>` part of its name. */
export type GroupKey = keyof typeof GROUP_PURPOSE;

/** The groups of Airflow nodes: the ones that reach the data stores and AWS APIs. */
const NODES = ["api-server", "scheduler", "worker"] as const;

/** The node groups that open connections to the metadata DB (tasks on workers use the Execution API). */
const DB_CLIENTS: readonly (typeof NODES)[number][] = ["api-server", "scheduler"];

/**
 * `from` may open TCP connections to `to` on `port`: an egress rule on `from` (construct
 * id `<id>-out`) and an ingress rule on `to` (`<id>-in`), both described by `why`.
 */
export interface SgLink {
  /** Construct id stem; it names the Terraform resources, so it never changes. */
  readonly id: string;
  /** The group that initiates. */
  readonly from: GroupKey;
  /** The group that accepts. */
  readonly to: GroupKey;
  /** TCP port. */
  readonly port: number;
  /** Rule description: why the path exists. */
  readonly why: string;
}

/** One rule between a group and a CIDR: ingress into `group` ("in") or egress from it ("out"). */
export interface SgCidrRule {
  /** Construct id; it names the Terraform resource, so it never changes. */
  readonly id: string;
  /** The group the rule belongs to. */
  readonly group: GroupKey;
  /** "in": the CIDR may connect to `group`; "out": `group` may connect to the CIDR. */
  readonly direction: "in" | "out";
  /** IPv4 CIDR block. */
  readonly cidr: string;
  /** TCP port. */
  readonly port: number;
  /** Rule description: why the path exists. */
  readonly why: string;
}

/** Inputs of {@link securityGroupRules}. */
export interface SecurityGroupRuleInputs {
  /** Metadata DB port (3306 or 5432). */
  readonly databasePort: number;
  /** Listener ports of the public load balancer. */
  readonly publicPorts: readonly number[];
  /** CIDRs allowed to reach the public load balancer. */
  readonly uiAllowedCidrs: readonly string[];
}

/**
 * Every rule of the cluster, CeleryExecutor's included, as one table. The
 * {@link SecurityGroups} construct creates the rows whose groups exist.
 */
export function securityGroupRules(i: SecurityGroupRuleInputs): {
  readonly links: readonly SgLink[];
  readonly cidrRules: readonly SgCidrRule[];
} {
  const anywhere = "0.0.0.0/0";
  // One row per line reads as the table it is; prettier would spread each row over seven.
  // prettier-ignore
  const links: SgLink[] = [
    { id: "alb-public-to-api", from: "alb-public", to: "api-server", port: PORTS.apiServer, why: "UI traffic to api-server" },
    // Internal load balancer: Execution API for workers (and the scheduler's dag-processor/triggerer);
    // Flower only from the api-server node, which is where an operator's SSM port-forwarding session lands.
    { id: "worker-to-alb-internal", from: "worker", to: "alb-internal", port: PORTS.apiServer, why: "Execution API calls from workers" },
    { id: "scheduler-to-alb-internal", from: "scheduler", to: "alb-internal", port: PORTS.apiServer, why: "Execution API calls from dag-processor/triggerer" },
    { id: "api-to-alb-internal-flower", from: "api-server", to: "alb-internal", port: PORTS.flower, why: "Flower via SSM port forwarding on the api-server node" },
    { id: "alb-internal-to-api", from: "alb-internal", to: "api-server", port: PORTS.apiServer, why: "Execution API to api-server" },
    { id: "alb-internal-to-flower", from: "alb-internal", to: "api-server", port: PORTS.flower, why: "Flower to api-server node" },
    // Task log viewing: the api-server fetches live logs from the worker that ran the task.
    { id: "api-to-worker-logs", from: "api-server", to: "worker", port: PORTS.workerLogServer, why: "live task logs from worker log server" },
    // Live trigger logs from the triggerer (on the scheduler nodes, or on the standalone node
    // itself with LocalExecutor, where both groups are attached).
    { id: "api-to-triggerer-logs", from: "api-server", to: "scheduler", port: PORTS.triggererLogServer, why: "live trigger logs from triggerer log server" },
    // Data stores accept only the Airflow nodes, and the metadata DB only the nodes that
    // hold its password: workers reach it through the Execution API, never directly.
    ...NODES.flatMap((n): SgLink[] => [
      { id: `${n}-to-redis`, from: n, to: "redis", port: PORTS.redis, why: `Celery broker from ${n}` },
      { id: `${n}-to-efs`, from: n, to: "efs", port: PORTS.nfs, why: `EFS (NFS over TLS) from ${n}` },
    ]),
    ...DB_CLIENTS.map((n): SgLink => (
      { id: `${n}-to-db`, from: n, to: "database", port: i.databasePort, why: `metadata DB from ${n}` }
    )),
  ];
  // prettier-ignore
  const cidrRules: SgCidrRule[] = [
    // Public load balancer: only the configured CIDRs, only the listener ports.
    ...i.uiAllowedCidrs.flatMap((cidr, n) => i.publicPorts.map((port): SgCidrRule => (
      { id: `alb-public-in-${port}-${n}`, group: "alb-public", direction: "in", cidr, port, why: `UI from allowed CIDR ${cidr}` }
    ))),
    // Node egress to the internet: HTTPS only (AWS APIs).
    ...NODES.map((n): SgCidrRule => (
      { id: `${n}-https-out`, group: n, direction: "out", cidr: anywhere, port: PORTS.https, why: "AWS APIs (SSM, Secrets Manager, CloudWatch, S3, EMR) via NAT/endpoint" }
    )),
    // DAG e-mail through SES SMTP (STARTTLS on 587) from the nodes that run tasks and callbacks.
    ...NODES.filter((n) => n !== "api-server").map((n): SgCidrRule => (
      { id: `${n}-smtp-out`, group: n, direction: "out", cidr: anywhere, port: PORTS.smtpSubmission, why: "SES SMTP (STARTTLS) for DAG e-mail" }
    )),
  ];
  // Data stores and load balancers initiate nothing: their only egress is the load
  // balancers' forward rules above.
  return { links, cidrRules };
}

/** Props of {@link SecurityGroups}. */
export interface SecurityGroupsProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** The VPC. */
  readonly vpc: Vpc;
  /** Metadata DB engine; picks 3306 or 5432. */
  readonly dbEngine: DatabaseEngine;
  /**
   * CIDRs allowed to reach the public load balancer.
   * @default [] - no public ingress at all (reach the UI via SSM port forwarding)
   */
  readonly uiAllowedCidrs?: readonly string[];
  /**
   * Whether the public load balancer serves HTTPS (443, plus 80 for the redirect)
   * instead of plain HTTP on 80.
   * @default false
   */
  readonly https?: boolean;
  /**
   * Whether the public load balancer exists (its group and rules with it).
   * @default true
   */
  readonly publicLoadBalancer?: boolean;
  /**
   * CeleryExecutor: workers, the broker and the internal load balancer exist. With
   * LocalExecutor (false) their groups are not created at all.
   * @default true
   */
  readonly celery?: boolean;
}

/** The security groups of the cluster, one per role. */
export class SecurityGroups extends Construct {
  /** Public (UI) load balancer; undefined without one. */
  public readonly albPublic?: SecurityGroup;
  /** Internal load balancer: Execution API for workers and Flower (CeleryExecutor only). */
  public readonly albInternal?: SecurityGroup;
  /** api-server (+ Flower) nodes; in LocalExecutor mode the standalone node uses this and `scheduler`. */
  public readonly apiServer: SecurityGroup;
  /** Scheduler nodes (scheduler, dag-processor, triggerer). */
  public readonly scheduler: SecurityGroup;
  /** Celery worker nodes (CeleryExecutor only). */
  public readonly worker?: SecurityGroup;
  /** Metadata database. */
  public readonly database: SecurityGroup;
  /** ElastiCache broker (CeleryExecutor only). */
  public readonly redis?: SecurityGroup;
  /** EFS mount targets. */
  public readonly efs: SecurityGroup;
  /** Database port (3306 or 5432). */
  public readonly databasePort: number;
  /** Port of the public listener(s): 443 (+80 redirect) with HTTPS, else 80. */
  public readonly publicPorts: readonly number[];

  public constructor(scope: Construct, id: string, props: SecurityGroupsProps) {
    super(scope, id);
    const cidrs = props.uiAllowedCidrs ?? [];
    for (const c of cidrs) {
      if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c)) {
        throw new PropError(this, "uiAllowedCidrs", c, "IPv4 CIDR blocks such as 203.0.113.0/24");
      }
    }
    const p = props.resourcePrefix;
    const sg = (key: GroupKey): SecurityGroup =>
      new SecurityGroup(this, key, {
        name: `${p}-${key}`,
        description: `${p}: ${GROUP_PURPOSE[key]}`,
        vpcId: props.vpc.id,
        tags: { Name: `${p}-${key}` },
        // Rules reference each other across groups; revoke them first so a destroy
        // does not wait on a dependency cycle.
        revokeRulesOnDelete: true,
      });
    if (props.publicLoadBalancer ?? true) this.albPublic = sg("alb-public");
    this.apiServer = sg("api-server");
    this.scheduler = sg("scheduler");
    this.database = sg("database");
    this.efs = sg("efs");
    if (props.celery ?? true) {
      this.albInternal = sg("alb-internal");
      this.worker = sg("worker");
      this.redis = sg("redis");
    }
    const groups: Partial<Record<GroupKey, SecurityGroup>> = {
      "alb-public": this.albPublic,
      "api-server": this.apiServer,
      scheduler: this.scheduler,
      database: this.database,
      efs: this.efs,
      "alb-internal": this.albInternal,
      worker: this.worker,
      redis: this.redis,
    };
    this.databasePort = props.dbEngine === "mysql" ? PORTS.mysql : PORTS.postgres;
    this.publicPorts = props.https ? [PORTS.https, PORTS.http] : [PORTS.http];

    const rules = securityGroupRules({
      databasePort: this.databasePort,
      publicPorts: this.publicPorts,
      uiAllowedCidrs: cidrs,
    });
    for (const l of rules.links) {
      const from = groups[l.from];
      const to = groups[l.to];
      // A row naming a Celery-only group is skipped with LocalExecutor, one naming the
      // public load balancer's without it.
      if (from && to) this.link(l.id, from, to, l.port, l.why);
    }
    for (const r of rules.cidrRules) {
      const group = groups[r.group];
      if (!group) continue; // a Celery-only group with LocalExecutor, or no public load balancer
      const rule = {
        securityGroupId: group.id,
        cidrIpv4: r.cidr,
        ipProtocol: "tcp",
        fromPort: r.port,
        toPort: r.port,
        description: r.why,
      };
      if (r.direction === "in") new VpcSecurityGroupIngressRule(this, r.id, rule);
      else new VpcSecurityGroupEgressRule(this, r.id, rule);
    }
  }

  /** Allows `from` to reach `to` on `port`: egress on `from`, ingress on `to`. */
  private link(id: string, from: SecurityGroup, to: SecurityGroup, port: number, why: string): void {
    new VpcSecurityGroupIngressRule(this, `${id}-in`, {
      securityGroupId: to.id,
      referencedSecurityGroupId: from.id,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      description: why,
    });
    new VpcSecurityGroupEgressRule(this, `${id}-out`, {
      securityGroupId: from.id,
      referencedSecurityGroupId: to.id,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      description: why,
    });
  }
}
