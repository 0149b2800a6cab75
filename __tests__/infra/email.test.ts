/**
 * E-mail: an SES identity exists exactly when a notification address is configured; the
 * sender and the region's SES SMTP endpoint reach the nodes through the settings.
 */
import { SesEmailIdentity } from "@cdktf/provider-aws/lib/ses-email-identity";
import { Testing } from "cdktf";
import { ClusterEmail } from "../../modules/email";
import { makeConfig } from "./compute-fixtures";

describe("ClusterEmail", () => {
  it.each([
    ["us-east-1", "email-smtp.us-east-1.amazonaws.com"],
    ["eu-central-1", "email-smtp.eu-central-1.amazonaws.com"],
  ])("in %s uses the SMTP host %s", (region, host) => {
    let email: ClusterEmail | undefined;
    Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", { config: makeConfig({ region }) });
    });
    expect(email?.smtpHost).toBe(host);
  });

  it("with notificationEmail creates the SES identity and sends from it", () => {
    // GIVEN a notification address
    let email: ClusterEmail | undefined;
    const json = Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", {
        config: makeConfig({ notificationEmail: "team@example.com" }),
      });
    });
    // THEN one identity for that address, used as the sender
    expect(json).toHaveResourceWithProperties(SesEmailIdentity, { email: "team@example.com" });
    expect(email?.fromEmail).toBe("team@example.com");
    expect(email?.identity).toBeDefined();
  });

  it("without one creates no identity and uses a never-deliverable sender", () => {
    let email: ClusterEmail | undefined;
    const json = Testing.synthScope((scope) => {
      email = new ClusterEmail(scope, "email", { config: makeConfig() });
    });
    expect(json).not.toHaveResource(SesEmailIdentity);
    expect(email?.identity).toBeUndefined();
    // RFC 2606 .invalid: valid syntax for airflow.cfg (the bootstrap checks it), never delivered.
    expect(email?.fromEmail).toBe("noreply@airflow-dev.invalid");
  });
});
