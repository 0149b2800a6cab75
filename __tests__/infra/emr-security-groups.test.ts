/**
 * DAG_1's EMR clusters run in security groups this stack owns, so `destroy` can delete
 * the VPC after the pipeline ran (EMR would otherwise create its default groups in it).
 */
import { Testing } from "cdktf";
import { AirflowClusterStack } from "../../modules/cluster-stack";
import { clusterNames } from "../../modules/config";
import { config, list } from "./helpers";

describe("EMR security groups", () => {
  // GIVEN the default cluster WHEN synthesized
  const c = config();
  const synth = Testing.synth(
    new AirflowClusterStack(Testing.app(), clusterNames(c).clusterStack, { config: c }),
  );
  const groups = list(synth, "aws_security_group").filter((g) => String(g.name).includes("-emr-"));
  const params = list(synth, "aws_ssm_parameter");
  const variable = (key: string) =>
    params.find((p) => p.name === `/airflow/dev/variables/${key}`)?.insecure_value;

  it.each(["emr-primary", "emr-core", "emr-service-access"])(
    "THEN %s exists in the VPC, tagged for the EMR managed policy, revoking EMR's rules on delete",
    (key) => {
      const g = groups.find((x) => x.name === `airflow-dev-${key}`);
      expect(g).toMatchObject({
        vpc_id: expect.stringMatching(/^\$\{aws_vpc\.[\w-]+\.id\}$/),
        revoke_rules_on_delete: true,
        tags: expect.objectContaining({ "for-use-with-amazon-emr-managed-policies": "true" }),
      });
      // EMR adds the rules its managed groups need; Terraform declares none inline, so it
      // neither reports them as drift nor strips them.
      expect(g?.ingress).toBeUndefined();
      expect(g?.egress).toBeUndefined();
    },
  );

  it.each([
    ["emr_primary_security_group_id", "emr-primary"],
    ["emr_core_security_group_id", "emr-core"],
    ["emr_service_access_security_group_id", "emr-service-access"],
  ])("THEN the Variable %s DAG_1 passes to RunJobFlow is the id of %s", (key, group) => {
    expect(variable(key)).toMatch(
      new RegExp(`^\\$\\{aws_security_group\\.emr-security-groups_${group}_\\w+\\.id\\}$`),
    );
  });

  it("THEN no other rule of the stack references the EMR groups (EMR owns their rules)", () => {
    const rules = [
      ...list(synth, "aws_vpc_security_group_ingress_rule"),
      ...list(synth, "aws_vpc_security_group_egress_rule"),
    ];
    expect(rules.filter((r) => JSON.stringify(r).includes("emr-security-groups"))).toEqual([]);
  });
});
