import assert from "node:assert/strict";
import { containerModelFlags } from "../server_main.ts";

Deno.test("containerModelFlags(): $MODEL_BASE_PATH/$MODEL_NAME, as the tensorflow/serving image", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.deepEqual(containerModelFlags(["--port=8500"], env({ MODEL_BASE_PATH: "/models" })), [
    "--model_name=model",
    "--model_base_path=/models/model",
  ]);
  assert.deepEqual(
    containerModelFlags([], env({ MODEL_BASE_PATH: "/models/", MODEL_NAME: "mnist" })),
    ["--model_name=mnist", "--model_base_path=/models/mnist"],
  );
  // A command line naming a model wins; no variable (or no permission to read it), no flags.
  assert.deepEqual(
    containerModelFlags(["--model_base_path=/m"], env({ MODEL_BASE_PATH: "/x" })),
    [],
  );
  assert.deepEqual(
    containerModelFlags(["--model_config_file=/config/c"], env({ MODEL_BASE_PATH: "/x" })),
    [],
  );
  assert.deepEqual(containerModelFlags([], env({})), []);
});
