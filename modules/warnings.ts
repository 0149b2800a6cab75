/**
 * Config choices that synthesize fine but surprise a first user: each becomes one
 * `warning:` line at synth (main.ts, scripts/synth.sh), naming the field and the fix.
 */
import type { AirflowConfig } from "./config";

/**
 * Warnings for a validated config, in a stable order; empty when nothing is surprising.
 * @param config the validated config
 * @param source the config file the fields live in, e.g. "config/dev.json"
 */
export function configWarnings(config: AirflowConfig, source: string): string[] {
  const warnings: string[] = [];
  if (config.uiAccess === "port-forward") {
    warnings.push(
      `${source}: uiAllowedCidrs is empty, so no load balancer serves the UI: reach it with ` +
        `\`npm run ui -- ${config.env}\` (SSM port forwarding), or set uiAllowedCidrs to your office CIDRs`,
    );
  }
  if (config.uiAllowedCidrs.length > 0 && !config.certificateArn) {
    // Outside dev this is refused (modules/config.ts); dev may, but should know.
    warnings.push(
      `${source}: uiAllowedCidrs is set without certificateArn, so the UI login travels over ` +
        `plain HTTP: set certificateArn (required outside dev)`,
    );
  }
  if (!config.notificationEmail) {
    warnings.push(
      `${source}: notificationEmail is not set, so DAG_1 mails no outcome: set it to an address SES can verify`,
    );
  }
  if (config.stateBucketNameIsGlobalGuess) {
    warnings.push(
      `${source}: accountId is not set, so the state bucket is named "${config.stateBucketName}", which any ` +
        `AWS account could own: set accountId (or stateBucketName); \`npm run deploy\` uses the caller's account`,
    );
  }
  if (config.env !== "dev" && !config.ami.id && !config.ami.gitRevision) {
    warnings.push(
      `${source}: ami is not pinned, so every deploy rolls all node groups onto the newest "${config.ami.name}" ` +
        `image: set ami.gitRevision (or ami.id) to the bake this environment runs`,
    );
  }
  if (config.env !== "dev" && config.efs.oneZone) {
    // Nodes launch only where the One Zone file system has its mount target (modules/storage.ts).
    warnings.push(
      `${source}: efs.oneZone is true, so every node runs in the file system's one AZ and an outage of ` +
        `that AZ stops the cluster: set efs.oneZone to false for nodes in every AZ`,
    );
  }
  if (config.env !== "dev" && !config.stateAccessPrincipalArns) {
    warnings.push(
      `${source}: stateAccessPrincipalArns is not set, so any principal of the account that IAM lets read ` +
        `the state bucket can read this env's Terraform state and every secret in it: list the deployers' role ARNs`,
    );
  }
  return warnings;
}
