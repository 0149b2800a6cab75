/**
 * Entry point of `cdktf synth`/`deploy`: validate the config, then build the state
 * stack and the cluster stack. A bad config, an unbuildable construct prop or a policy
 * violation prints one line per problem and exits 1, without a stack trace; a surprising config prints `warning:` lines.
 */
import { App } from "cdktf";
import { AirflowClusterStack } from "./modules/cluster-stack";
import { ConfigError, clusterNames, loadConfig } from "./modules/config";
import { PropError } from "./modules/contract";
import { PolicyError } from "./modules/policy-aspect";
import { envsSharingStateBucket } from "./modules/state-access";
import { StateStack } from "./modules/state-stack";
import { configWarnings } from "./modules/warnings";

function main(): void {
  const config = loadConfig();
  for (const w of configWarnings(config, `config/${config.env}.json`))
    process.stderr.write(`warning: ${w}\n`);
  const names = clusterNames(config);
  const app = new App();
  new StateStack(app, names.stateStack, { config, envs: envsSharingStateBucket(config) });
  new AirflowClusterStack(app, names.clusterStack, { config });
  app.synth();
}

try {
  main();
} catch (e) {
  if (e instanceof ConfigError || e instanceof PropError || e instanceof PolicyError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
  throw e;
}
