/**
 * Upstream's batching metrics (tensorflow_serving/batching/batching_session.cc and
 * batching_util.h), under their names with `/` turned into `:` as the Prometheus exporter does:
 *
 * | metric | type | labels | buckets |
 * | --- | --- | --- | --- |
 * | `:tensorflow:serving:batching_session:input_batch_size` | histogram | | 1·2^i, 14 |
 * | `:tensorflow:serving:batching_session:processed_batch_size` | histogram | | 1·2^i, 14 |
 * | `:tensorflow:serving:batching_session:padding_size` | histogram | execution_batch_size | 1·2^i, 14 |
 * | `:tensorflow:serving:batching_session:queuing_latency` | histogram (µs) | thread_pool_name | 100·1.2^i, 52 |
 *
 * @module
 */
import type { BatchObserver } from "../exec/executor.ts";
import { exponentialBuckets, type Registry } from "./metrics.ts";

/** Defines the batching metrics on a registry and returns the executor's observer. */
export function batchingMetrics(registry: Registry): BatchObserver {
  const sizes = exponentialBuckets(1, 2, 14);
  const prefix = ":tensorflow:serving:batching_session:";
  const input = registry.histogram(
    `${prefix}input_batch_size`,
    "Tracks the batch size distribution on the inputs.",
    [],
    sizes,
  );
  const processed = registry.histogram(
    `${prefix}processed_batch_size`,
    "Tracks the batch size distribution on processing.",
    [],
    sizes,
  );
  const padding = registry.histogram(
    `${prefix}padding_size`,
    "Tracks the padding size distribution on batches.",
    ["execution_batch_size"],
    sizes,
  );
  const queuing = registry.histogram(
    `${prefix}queuing_latency`,
    "Distribution of wall time spent (in microseconds) in queuing",
    ["thread_pool_name"],
    exponentialBuckets(100, 1.2, 52),
  );
  return {
    inputBatchSize: (rows) => input.observe([], rows),
    processedBatch(executionBatchSize, pad) {
      processed.observe([], executionBatchSize);
      padding.observe([String(executionBatchSize)], pad);
    },
    queuingLatency: (micros, pool) => queuing.observe([pool], micros),
  };
}
