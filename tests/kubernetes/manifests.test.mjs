// deploy/kubernetes/*.yaml against the Kubernetes API's own schemas (kubernetes-models: the OpenAPI schemas of
// Kubernetes 1.27 as JSON Schema, validated with ajv), and what the fleet's design needs of them: probes on
// /readyz and /healthz, a grace period that covers drain_delay and shutdown_timeout, selectors that match, an
// autoscaler and budgets that name real Deployments. Run by CTest as kubernetes_manifests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const dir = new URL("../../deploy/kubernetes/", import.meta.url);
const documents = readdirSync(dir)
  .filter((name) => name.endsWith(".yaml"))
  .flatMap((name) =>
    parseAllDocuments(readFileSync(new URL(name, dir), "utf8")).map((doc) => {
      assert.deepEqual(doc.errors, [], `${name}: YAML errors`);
      return { file: name, object: doc.toJS() };
    }),
  );

async function modelOf({ apiVersion, kind }) {
  const module = await import(`kubernetes-models/${apiVersion}`);
  assert.ok(module[kind], `no ${kind} in ${apiVersion}`);
  return module[kind];
}

test("every manifest is valid against the Kubernetes API's schema of its kind", async () => {
  assert.ok(documents.length >= 7, `only ${documents.length} documents`);
  for (const { file, object } of documents) {
    const Model = await modelOf(object);
    assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind} ${object.metadata?.name}`);
  }
});

test("the validation rejects what the API server would", async () => {
  const deployment = documents.find((d) => d.object.kind === "Deployment").object;
  const Model = await modelOf(deployment);
  const broken = structuredClone(deployment);
  broken.spec.replicas = "three";
  assert.throws(() => new Model(broken).validate());
  const noContainers = structuredClone(deployment);
  delete noContainers.spec.template.spec.containers;
  assert.throws(() => new Model(noContainers).validate());
});

const deployments = documents.filter((d) => d.object.kind === "Deployment").map((d) => d.object);
const settings = documents.find((d) => d.object.kind === "ConfigMap" && d.object.metadata.name === "liftoff")
  .object.data;
const matches = (selector, labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

test("every pod is probed, drains before it stops, and runs unprivileged", () => {
  for (const deployment of deployments) {
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const names = container.envFrom.map((from) => (from.configMapRef ?? from.secretRef).name);
    assert.deepEqual(names, ["liftoff", "liftoff"], deployment.metadata.name);
    assert.equal(settings.LIFTOFF_DRAIN_DELAY, "5s");
    // drain_delay 5 s + shutdown_timeout 10 s + a statement's deadline 5 s
    assert.ok(pod.terminationGracePeriodSeconds >= 20, deployment.metadata.name);
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
    assert.ok(matches(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels));
  }
});

test("the Service, the budgets and the autoscaler select real Deployments", () => {
  const podLabels = deployments.map((d) => d.spec.template.metadata.labels);
  for (const { object } of documents) {
    if (object.kind === "Service") {
      assert.equal(podLabels.filter((labels) => matches(object.spec.selector, labels)).length, 1);
    }
    if (object.kind === "PodDisruptionBudget") {
      assert.equal(podLabels.filter((labels) => matches(object.spec.selector.matchLabels, labels)).length, 1);
    }
    if (object.kind === "HorizontalPodAutoscaler") {
      assert.ok(deployments.some((d) => d.metadata.name === object.spec.scaleTargetRef.name));
      const custom = object.spec.metrics.find((m) => m.type === "Pods");
      const adapter = documents.find((d) => d.object.metadata.name === "prometheus-adapter-liftoff").object.data[
        "config.yaml"
      ];
      assert.match(adapter, new RegExp(`as: ${custom.pods.metric.name}\\b`));
    }
  }
});
