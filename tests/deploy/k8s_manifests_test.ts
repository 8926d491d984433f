/**
 * The deployment files, checked where they cannot be applied: every manifest under deploy/k8s/
 * validates against the Kubernetes OpenAPI definitions (the npm package `kubernetes-models`,
 * whose per-kind validators are generated from Kubernetes' OpenAPI spec with the JSON-schema
 * validator Ajv), and agrees with the server (ports, probes, roots, the model config) and the
 * Containerfile.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { parseModelServerConfig } from "../../src/config/model_config.ts";
import { parseTextProto } from "../../src/config/model_config.ts";
import { MonitoringConfigSchema } from "../../src/proto/gen/tensorflow_serving/config/monitoring_config_pb.ts";
import { parseFlags } from "../../src/config/flags.ts";
import {
  CONTAINER_CONFIG_DIR,
  CONTAINER_MODEL_ROOT,
  CONTAINER_PORTS,
} from "../../src/config/permissions.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const K8S = `${ROOT}deploy/k8s`;

// deno-lint-ignore no-explicit-any
type Manifest = Record<string, any>;

/** A model class per apiVersion/kind: constructing one and calling validate() checks the schema. */
// deno-lint-ignore no-explicit-any
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "v1/PersistentVolumeClaim": PersistentVolumeClaim,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
};

function validate(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  if (Model === undefined) throw new Error(`no schema for ${m.apiVersion} ${m.kind}`);
  new Model(m).validate();
}

async function manifests(): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for await (const e of Deno.readDir(K8S)) {
    if (!e.name.endsWith(".yaml")) continue;
    for (const doc of parseAllDocuments(await Deno.readTextFile(`${K8S}/${e.name}`))) {
      assert.deepEqual(doc.errors, [], e.name);
      out.push({ ...doc.toJS(), __file: e.name });
    }
  }
  return out;
}

function strip(m: Manifest): Manifest {
  const { __file: _, ...rest } = m;
  return rest;
}

const all = await manifests();
const find = (kind: string) => all.find((m) => m.kind === kind)!;

Deno.test("every manifest under deploy/k8s validates against the Kubernetes schemas", () => {
  assert.deepEqual(
    all.map((m) => m.kind).sort(),
    ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Service"],
  );
  for (const m of all) {
    try {
      validate(strip(m));
    } catch (e) {
      assert.fail(`${m.__file}: ${(e as Error).message}`);
    }
  }
});

Deno.test("the validator rejects what the schemas forbid", () => {
  const d = strip(find("Deployment"));
  const broken: [string, (m: Manifest) => void][] = [
    ["a Deployment without a selector", (m) => delete m.spec.selector],
    [
      "a port that is not a number",
      (m) => (m.spec.template.spec.containers[0].ports[0].containerPort = "grpc"),
    ],
    [
      "a probe port of the wrong type",
      (m) => (m.spec.template.spec.containers[0].livenessProbe.httpGet.port = {}),
    ],
    ["replicas as a string", (m) => (m.spec.replicas = "two")],
  ];
  for (const [what, breakIt] of broken) {
    const m = structuredClone(d);
    breakIt(m);
    assert.throws(() => validate(m), Error, what);
  }
  const hpa = structuredClone(strip(find("HorizontalPodAutoscaler")));
  delete hpa.spec.scaleTargetRef;
  assert.throws(() => validate(hpa));
});

Deno.test("the Deployment runs the server as the image and the server agree", () => {
  const d = find("Deployment");
  const pod = d.spec.template.spec;
  const c = pod.containers[0];
  assert.deepEqual(d.spec.selector.matchLabels, d.metadata.labels);
  assert.deepEqual(c.ports.map((p: Manifest) => p.containerPort), CONTAINER_PORTS);
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.port, "http");
  assert.equal(c.ports.find((p: Manifest) => p.name === "http").containerPort, 8501);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.ok(c.resources.requests.memory && c.resources.limits.memory && c.resources.requests.cpu);
  // The flags parse, with the image's entrypoint flags in front.
  const opts = parseFlags(["--port=8500", "--rest_api_port=8501", ...c.args]);
  assert.ok(opts.modelConfigFile.startsWith(`${CONTAINER_CONFIG_DIR}/`));
  assert.ok(opts.monitoringConfigFile.startsWith(`${CONTAINER_CONFIG_DIR}/`));
  // Models from a read-only volume at the root; the config from the ConfigMap.
  const mounts = Object.fromEntries(c.volumeMounts.map((v: Manifest) => [v.mountPath, v]));
  assert.equal(mounts[CONTAINER_MODEL_ROOT].readOnly, true);
  assert.equal(mounts[CONTAINER_CONFIG_DIR].readOnly, true);
  const volumes = Object.fromEntries(pod.volumes.map((v: Manifest) => [v.name, v]));
  assert.equal(
    volumes[mounts[CONTAINER_MODEL_ROOT].name].persistentVolumeClaim.claimName,
    find("PersistentVolumeClaim").metadata.name,
  );
  assert.equal(
    volumes[mounts[CONTAINER_CONFIG_DIR].name].configMap.name,
    find("ConfigMap").metadata.name,
  );
});

Deno.test("the ConfigMap's configs parse, and every base path is under /models", () => {
  const cm = find("ConfigMap");
  const config = parseModelServerConfig(cm.data["models.config"], "models.config");
  assert.ok(config.models.length > 0);
  for (const m of config.models) assert.ok(m.basePath.startsWith(`${CONTAINER_MODEL_ROOT}/`));
  const monitoring = parseTextProto(MonitoringConfigSchema, cm.data["monitoring.config"]);
  assert.equal(monitoring.prometheusConfig?.enable, true);
});

Deno.test("the Service and the autoscaler point at the Deployment", () => {
  const d = find("Deployment");
  const s = find("Service");
  assert.deepEqual(s.spec.selector, d.spec.template.metadata.labels);
  assert.deepEqual(s.spec.ports.map((p: Manifest) => p.port), CONTAINER_PORTS);
  const h = find("HorizontalPodAutoscaler");
  assert.deepEqual(h.spec.scaleTargetRef, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    name: d.metadata.name,
  });
  assert.equal(h.spec.metrics[0].resource.name, "cpu");
  assert.ok(h.spec.minReplicas <= h.spec.maxReplicas);
});

Deno.test("the Containerfile: multi-stage, pinned Deno, non-root, ports and env", async () => {
  const text = await Deno.readTextFile(`${ROOT}Containerfile`);
  const lines = text.split("\n").filter((l) => !l.startsWith("#"));
  const from = lines.filter((l) => l.startsWith("FROM "));
  assert.equal(from.length, 2);
  const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
  const pinned = /^DENO_VERSION=(\S+)$/m.exec(ci)![1];
  assert.match(from[0], new RegExp(`denoland/deno:\\S*${pinned.replaceAll(".", "\\.")} AS build`));
  assert.match(text, new RegExp(`release/v${pinned.replaceAll(".", "\\.")}/denort-`));
  assert.match(text, /^RUN DENORT_BIN=\S+ deno task compile$/m);
  assert.match(text, /^USER 65532:65532$/m);
  assert.match(text, /^EXPOSE 8500 8501$/m);
  assert.match(text, /ENV MODEL_NAME=model \\\n\s+MODEL_BASE_PATH=\/models$/m);
  assert.match(
    text,
    /^ENTRYPOINT \["\/usr\/bin\/tensorflow_model_server", "--port=8500", "--rest_api_port=8501"\]$/m,
  );
});
