/**
 * E-mail for DAGs: an SES e-mail identity for the sender and the region's SES SMTP host.
 *
 * SES sandbox: a new account can send only to verified identities. Until production
 * access is granted (a support request), the RECIPIENT address must be verified too -
 * with the default config the sender is also the recipient (`alert_email`), so the one
 * verification mail that `deploy` triggers covers both. Nodes send through the SES API
 * with their instance role (ses:SendRawEmail on this identity), so no SMTP credentials
 * exist anywhere; the SMTP host is still published for DAGs that prefer SMTP.
 */
import { SesEmailIdentity } from "@cdktf/provider-aws/lib/ses-email-identity";
import { Construct } from "constructs";
import type { AirflowConfig } from "./config";
import { clusterNames } from "./config";

/** Properties of {@link ClusterEmail}. */
export interface ClusterEmailProps {
  /** The validated deployment config (region, notificationEmail). */
  readonly config: AirflowConfig;
}

/** SES sender identity (when `config.notificationEmail` is set) and SMTP settings. */
export class ClusterEmail extends Construct {
  /** The SES identity; undefined when no notification e-mail is configured. */
  public readonly identity?: SesEmailIdentity;
  /**
   * Sender address: `config.notificationEmail`, else `noreply@<namePrefix>-<env>.invalid`
   * (RFC 2606 reserved TLD - syntactically valid for airflow.cfg, never deliverable, and
   * SES refuses it because no identity exists, so nothing is mailed by accident).
   */
  public readonly fromEmail: string;
  /** `email-smtp.<region>.amazonaws.com`. */
  public readonly smtpHost: string;

  public constructor(scope: Construct, id: string, props: ClusterEmailProps) {
    super(scope, id);
    const { config } = props;
    this.smtpHost = `email-smtp.${config.region}.amazonaws.com`;
    if (config.notificationEmail) {
      // Creating the identity makes SES mail a verification link to the address.
      this.identity = new SesEmailIdentity(this, "sender", { email: config.notificationEmail });
      this.fromEmail = config.notificationEmail;
    } else {
      this.fromEmail = `noreply@${clusterNames(config).resourcePrefix}.invalid`;
    }
  }
}
