/**
 * The EMR-managed security groups of DAG_1's clusters, created here instead of by EMR.
 *
 * Without them, the first RunJobFlow in a private subnet makes EMR create its default
 * `ElasticMapReduce-Master-Private`, `-Slave-Private` and `-ServiceAccess` groups in the
 * VPC; Terraform does not know them, so `destroy` fails on the VPC ("has dependencies").
 * DAG_1 passes these three to the job flow (`EmrManagedMasterSecurityGroup`,
 * `EmrManagedSlaveSecurityGroup`, `ServiceAccessSecurityGroup`) through the Airflow
 * Variables `emr_primary_security_group_id`, `emr_core_security_group_id` and
 * `emr_service_access_security_group_id`.
 *
 * The groups are created empty: EMR adds the rules its managed groups need when a cluster
 * starts (EMR documentation, "Working with Amazon EMR-managed security groups"), including
 * the all-ports rules between primary and core that this stack's own policy forbids for
 * its rules. Terraform declares no inline rules, so it neither shows EMR's rules as drift
 * nor removes them; `revokeRulesOnDelete` revokes them before the groups are deleted
 * (they reference each other, so a plain delete would fail). Each group carries the tag
 * the EMR v2 managed service policy requires before it may modify a group.
 */
import { Construct } from "constructs";
import { SecurityGroup } from "@cdktf/provider-aws/lib/security-group";
import { skipCheckov } from "./checkov";
import { EMR_MANAGED_TAG } from "./contract";

/** Props of {@link EmrSecurityGroups}. */
export interface EmrSecurityGroupsProps {
  /** `<namePrefix>-<env>`. */
  readonly resourcePrefix: string;
  /** The VPC DAG_1's clusters run in. */
  readonly vpc: { readonly id: string };
}

/** Primary, core and service-access security groups for EMR clusters in private subnets. */
export class EmrSecurityGroups extends Construct {
  /** EMR-managed security group of the primary node (`EmrManagedMasterSecurityGroup`). */
  public readonly primary: SecurityGroup;
  /** EMR-managed security group of core and task nodes (`EmrManagedSlaveSecurityGroup`). */
  public readonly core: SecurityGroup;
  /** Service access security group (`ServiceAccessSecurityGroup`), required in private subnets. */
  public readonly serviceAccess: SecurityGroup;

  public constructor(scope: Construct, id: string, props: EmrSecurityGroupsProps) {
    super(scope, id);
    const p = props.resourcePrefix;
    const sg = (key: string, what: string) => {
      const group = new SecurityGroup(this, key, {
        name: `${p}-${key}`,
        description: `${p}: ${what} (rules added by EMR)`,
        vpcId: props.vpc.id,
        tags: { Name: `${p}-${key}`, [EMR_MANAGED_TAG.key]: EMR_MANAGED_TAG.value },
        revokeRulesOnDelete: true,
      });
      skipCheckov(
        group,
        "CKV2_AWS_5",
        "attached at run time: DAG_1 passes it to RunJobFlow through an Airflow Variable, so no Terraform resource references it",
      );
      return group;
    };
    this.primary = sg("emr-primary", "EMR-managed group of DAG_1's primary nodes");
    this.core = sg("emr-core", "EMR-managed group of DAG_1's core nodes");
    this.serviceAccess = sg("emr-service-access", "EMR service access to DAG_1's clusters");
  }
}
