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
 */
import { Construct } from "constructs";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { Vpc } from "@cdktf/provider-aws/lib/vpc";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { PORTS, PropError } from "./contract";

/** Props of {@link SecurityGroups}. */
export interface SecurityGroupsProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** The VPC. */
  readonly vpc: Vpc;
  /** Metadata DB engine; picks 3306 or 5432. */
  readonly dbEngine: "mysql" | "postgres";
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
   * CeleryExecutor: workers, the broker and the internal load balancer exist. With
   * LocalExecutor (false) their groups are not created at all.
   * @default true
   */
  readonly celery?: boolean;
}

/** The security groups of the cluster, one per role. */
export class SecurityGroups extends Construct {
  /** Public (UI) load balancer. */
  public readonly albPublic: SecurityGroup;
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
    const sg = (key: string, what: string) =>
      new SecurityGroup(this, key, {
        name: `${p}-${key}`,
        description: `${p}: ${what}`,
        vpcId: props.vpc.id,
        tags: { Name: `${p}-${key}` },
        // Rules reference each other across groups; revoke them first so a destroy
        // does not wait on a dependency cycle.
        revokeRulesOnDelete: true,
      });
    const celery = props.celery ?? true;
    this.albPublic = sg("alb-public", "public UI load balancer");
    this.apiServer = sg("api-server", "Airflow api-server and Flower nodes");
    this.scheduler = sg("scheduler", "Airflow scheduler, dag-processor and triggerer nodes");
    this.database = sg("database", "Airflow metadata database");
    this.efs = sg("efs", "EFS mount targets for DAGs and plugins");
    this.databasePort = props.dbEngine === "mysql" ? PORTS.mysql : PORTS.postgres;
    this.publicPorts = props.https ? [PORTS.https, PORTS.http] : [PORTS.http];

    // Public load balancer: only the configured CIDRs, only the listener ports.
    cidrs.forEach((cidr, i) =>
      this.publicPorts.forEach((port) =>
        this.ingressCidr(
          `alb-public-in-${port}-${i}`,
          this.albPublic,
          cidr,
          port,
          `UI from allowed CIDR ${cidr}`,
        ),
      ),
    );
    this.link(
      "alb-public-to-api",
      this.albPublic,
      this.apiServer,
      PORTS.apiServer,
      "UI traffic to api-server",
    );

    const nodes = [
      { name: "api-server", group: this.apiServer },
      { name: "scheduler", group: this.scheduler },
    ];
    if (celery) {
      const albInternal = sg("alb-internal", "internal load balancer (Execution API, Flower)");
      const worker = sg("worker", "Airflow Celery worker nodes");
      const redis = sg("redis", "Celery broker (ElastiCache)");
      this.albInternal = albInternal;
      this.worker = worker;
      this.redis = redis;
      nodes.push({ name: "worker", group: worker });

      // Internal load balancer: Execution API for workers (and the scheduler's
      // dag-processor/triggerer); Flower only from the api-server node, which is where an
      // operator's SSM port-forwarding session lands.
      this.link(
        "worker-to-alb-internal",
        worker,
        albInternal,
        PORTS.apiServer,
        "Execution API calls from workers",
      );
      this.link(
        "scheduler-to-alb-internal",
        this.scheduler,
        albInternal,
        PORTS.apiServer,
        "Execution API calls from dag-processor/triggerer",
      );
      this.link(
        "api-to-alb-internal-flower",
        this.apiServer,
        albInternal,
        PORTS.flower,
        "Flower via SSM port forwarding on the api-server node",
      );
      this.link(
        "alb-internal-to-api",
        albInternal,
        this.apiServer,
        PORTS.apiServer,
        "Execution API to api-server",
      );
      this.link(
        "alb-internal-to-flower",
        albInternal,
        this.apiServer,
        PORTS.flower,
        "Flower to api-server node",
      );
      // Task log viewing: the api-server fetches live logs from the worker that ran the task.
      this.link(
        "api-to-worker-logs",
        this.apiServer,
        worker,
        PORTS.workerLogServer,
        "live task logs from worker log server",
      );
      for (const n of nodes) {
        this.link(`${n.name}-to-redis`, n.group, redis, PORTS.redis, `Celery broker from ${n.name}`);
      }
    }
    // Live trigger logs from the triggerer (on the scheduler nodes, or on the standalone
    // node itself with LocalExecutor, where both groups are attached).
    this.link(
      "api-to-triggerer-logs",
      this.apiServer,
      this.scheduler,
      PORTS.triggererLogServer,
      "live trigger logs from triggerer log server",
    );

    // Data stores: only from the Airflow nodes. Node egress to the internet: HTTPS only.
    for (const n of nodes) {
      this.link(`${n.name}-to-db`, n.group, this.database, this.databasePort, `metadata DB from ${n.name}`);
      this.link(`${n.name}-to-efs`, n.group, this.efs, PORTS.nfs, `EFS (NFS over TLS) from ${n.name}`);
      this.egressCidr(
        `${n.name}-https-out`,
        n.group,
        "0.0.0.0/0",
        PORTS.https,
        "AWS APIs (SSM, Secrets Manager, CloudWatch, S3, EMR) via NAT/endpoint",
      );
    }
    // DAG e-mail through SES SMTP (STARTTLS on 587) from the nodes that run tasks and callbacks.
    for (const n of nodes.filter((x) => x.name !== "api-server")) {
      this.egressCidr(
        `${n.name}-smtp-out`,
        n.group,
        "0.0.0.0/0",
        PORTS.smtpSubmission,
        "SES SMTP (STARTTLS) for DAG e-mail",
      );
    }
    // Data stores and load balancers initiate nothing: no egress on them beyond the load
    // balancers' forward rules created by link() above.
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

  private ingressCidr(id: string, to: SecurityGroup, cidr: string, port: number, why: string): void {
    new VpcSecurityGroupIngressRule(this, id, {
      securityGroupId: to.id,
      cidrIpv4: cidr,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      description: why,
    });
  }

  private egressCidr(id: string, from: SecurityGroup, cidr: string, port: number, why: string): void {
    new VpcSecurityGroupEgressRule(this, id, {
      securityGroupId: from.id,
      cidrIpv4: cidr,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      description: why,
    });
  }
}
