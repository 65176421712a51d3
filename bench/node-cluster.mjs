// The Node seed app (tests/node-interop/app.js) as a cluster of 2 workers
// sharing one port, for bench/redis_vs_node.sh.
import cluster from "node:cluster";

if (cluster.isPrimary) {
  cluster.fork();
  cluster.fork();
} else {
  await import("../tests/node-interop/app.js");
}
