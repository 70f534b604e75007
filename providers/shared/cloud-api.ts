// What a provider's cloud API gives flow: instance types with their regions, instances, launch,
// terminate. A provider with one (providers/lambda.ts, providers/datacrunch.ts) declares it as a
// CloudApi; the generic provider:list|up|down tasks (providers/cloud/) use nothing else.
import type { RetryInfo } from "../api/http.ts";

export interface CloudType {
  name: string;
  description: string;
  usdPerHour: number;
  /** regions (or location codes) that can launch it now */
  regions: string[];
}

export interface CloudInstance {
  id: string;
  name: string;
  status: string;
  ip: string | null;
  type: string;
  region: string;
}

export interface LaunchRequest {
  /** instance and host name */
  name: string;
  type: string;
  region: string;
  /** an SSH key registered with the provider (its name, or whatever the provider also accepts) */
  sshKey?: string;
  image?: string;
}

/** The API with credentials: every call goes over the network. */
export interface CloudSession {
  types(): Promise<CloudType[]>;
  instances(): Promise<CloudInstance[]>;
  /** null when the provider no longer knows the instance */
  instance(id: string): Promise<CloudInstance | null>;
  /** launch one instance; answers its id */
  launch(req: LaunchRequest): Promise<string>;
  terminate(id: string): Promise<void>;
}

export interface CloudApi {
  /** how messages name the cloud: "Lambda", "DataCrunch" */
  title: string;
  /** the secrets a session needs, all of them (environment or .env) */
  secrets: string[];
  /** what provider:down does to a box here: "terminate" / "delete", and its past form */
  ending: { verb: string; done: string };
  /** words for the options of provider:up, so its help names each cloud's own terms */
  help: {
    /** an instance type, e.g. gpu_1x_h100_pcie */
    type: string;
    /** what --region means here, e.g. "region (Lambda, e.g. us-east-1)" */
    region: string;
    /** what --ssh-key takes, e.g. "name (Lambda)" */
    sshKey: string;
    /** what --image takes, e.g. "image family (Lambda)" */
    image: string;
  };
  /** open a session; `secrets` holds at least every name in `secrets` */
  connect(secrets: Readonly<Record<string, string>>, onRetry: (info: RetryInfo) => void): CloudSession;
  /** running with an address: time to knock on SSH */
  ready(i: CloudInstance): boolean;
  /** will never become ready (provider:up stops waiting) */
  gone(i: CloudInstance): boolean;
  /** needs no termination: deleted or on its way out (provider:down); an offline or errored box still bills */
  deleted(i: CloudInstance): boolean;
}
