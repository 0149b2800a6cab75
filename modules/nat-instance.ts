/**
 * A NAT instance: the private subnets' outbound path for an env that trades the managed
 * NAT gateway's availability for its price (about $7 a month against $37). It is one
 * t4g.nano in a public subnet running Amazon Linux 2023 with IP forwarding and an
 * iptables MASQUERADE rule, configured the way the VPC user guide's "Create a NAT AMI"
 * does it. EC2's simplified automatic recovery restarts it on a host failure. It keeps the
 * AL2023 release it was created from until it is replaced on purpose (see the README).
 */
import type { ITerraformDependable } from "cdktf";
import { Construct } from "constructs";
import { DataAwsSsmParameter } from "@cdktf/provider-aws/lib/data-aws-ssm-parameter";
import { Instance } from "@cdktf/provider-aws/lib/instance";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { VpcSecurityGroupEgressRule } from "@cdktf/provider-aws/lib/vpc-security-group-egress-rule";
import { VpcSecurityGroupIngressRule } from "@cdktf/provider-aws/lib/vpc-security-group-ingress-rule";
import { skipCheckovAll } from "./checkov";
import { HasId, PORTS, PropError } from "./contract";

/** The smallest Graviton size; forwarding a dev cluster's API calls uses a sliver of it. */
export const NAT_INSTANCE_TYPE = "t4g.nano";

/** AWS's public parameter naming the newest AL2023 arm64 AMI (it matches {@link NAT_INSTANCE_TYPE}). */
export const NAT_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64";

/**
 * Ports the private subnets may send through the NAT: exactly the nodes' egress to the
 * internet (security-groups.ts): HTTPS to AWS APIs, SES SMTP with STARTTLS.
 */
export const NAT_PORTS: readonly number[] = [PORTS.https, PORTS.smtpSubmission];

/**
 * Boot script: forward and masquerade out of the primary interface, persistently. The
 * package install retries: a failure would end the script before the MASQUERADE rule, and
 * the private nodes would lose every AWS API while the instance looks healthy.
 */
export const NAT_USER_DATA = `#!/bin/bash
set -euo pipefail
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl --system
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  dnf install -y iptables-services && break
  [ "$attempt" -lt 10 ] || exit 1
  sleep 15
done
systemctl enable --now iptables
iface="$(ip -o route show default | awk '{print $5; exit}')"
iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
iptables -F FORWARD
service iptables save
`;

/** Props of {@link NatInstance}. */
export interface NatInstanceProps {
  /** `<namePrefix>-<env>`, prefixed to names. */
  readonly resourcePrefix: string;
  /** The VPC. */
  readonly vpc: HasId;
  /** The public subnet it runs in (internet gateway route, public IPv4). */
  readonly subnet: HasId;
  /** CIDRs of the subnets whose traffic it forwards. */
  readonly sourceCidrs: readonly string[];
  /**
   * The public subnet's path to the internet gateway (its route and route table
   * association): the boot script installs a package, so the instance starts after them.
   * @default [] - no ordering
   */
  readonly internetPath?: readonly ITerraformDependable[];
}

/** One NAT instance with its security group; route to `networkInterfaceId`. */
export class NatInstance extends Construct {
  /** The instance. */
  public readonly instance: Instance;
  /** Its primary network interface: the target of the private default routes. */
  public readonly networkInterfaceId: string;
  /** Its security group: the private subnets in on {@link NAT_PORTS}, the same ports out. */
  public readonly securityGroup: SecurityGroup;

  public constructor(scope: Construct, id: string, props: NatInstanceProps) {
    super(scope, id);
    if (props.sourceCidrs.length === 0) {
      throw new PropError(this, "sourceCidrs", [], "one or more subnet CIDRs to forward");
    }
    const p = props.resourcePrefix;
    this.securityGroup = new SecurityGroup(this, "sg", {
      name: `${p}-nat`,
      description: `${p}: NAT instance for the private subnets`,
      vpcId: props.vpc.id,
      tags: { Name: `${p}-nat` },
      revokeRulesOnDelete: true,
    });
    props.sourceCidrs.forEach((cidr, n) =>
      NAT_PORTS.forEach(
        (port) =>
          new VpcSecurityGroupIngressRule(this, `in-${port}-${n}`, {
            securityGroupId: this.securityGroup.id,
            cidrIpv4: cidr,
            ipProtocol: "tcp",
            fromPort: port,
            toPort: port,
            description: `forwarded from private subnet ${cidr}`,
          }),
      ),
    );
    // Its own package install at boot is HTTPS too, so the forwarded ports cover it.
    NAT_PORTS.forEach(
      (port) =>
        new VpcSecurityGroupEgressRule(this, `out-${port}`, {
          securityGroupId: this.securityGroup.id,
          cidrIpv4: "0.0.0.0/0",
          ipProtocol: "tcp",
          fromPort: port,
          toPort: port,
          description: "forwarded traffic to the internet",
        }),
    );

    const ami = new DataAwsSsmParameter(this, "ami", { name: NAT_AMI_PARAMETER });
    this.instance = new Instance(this, "instance", {
      ami: ami.value,
      instanceType: NAT_INSTANCE_TYPE,
      subnetId: props.subnet.id,
      vpcSecurityGroupIds: [this.securityGroup.id],
      associatePublicIpAddress: true,
      // It forwards packets addressed to other hosts.
      sourceDestCheck: false,
      userData: NAT_USER_DATA,
      userDataReplaceOnChange: true,
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      maintenanceOptions: { autoRecovery: "default" },
      monitoring: false,
      rootBlockDevice: { volumeType: "gp3", volumeSize: 8, encrypted: true, deleteOnTermination: true },
      tags: { Name: `${p}-nat` },
      dependsOn: props.internetPath?.length ? [...props.internetPath] : undefined,
      lifecycle: {
        // A new AL2023 release changes the parameter's value; following it would replace
        // the instance on an unrelated deploy and cut egress meanwhile. Replace it on
        // purpose (`cdktf deploy` with -replace), and then the new one comes up first.
        ignoreChanges: ["ami"],
        createBeforeDestroy: true,
      },
    });
    skipCheckovAll(this.instance, {
      CKV_AWS_88:
        "A NAT instance needs a public IPv4 address; its security group admits only the private subnets",
      CKV2_AWS_41:
        "The NAT instance calls no AWS API, so it has no IAM role; it is replaced, never logged into",
      CKV_AWS_126: "Dev-only NAT instance: 5-minute basic metrics suffice",
      CKV_AWS_135: "t4g instances are EBS-optimized by default; the flag does not apply",
    });
    this.networkInterfaceId = this.instance.primaryNetworkInterfaceId;
  }
}
