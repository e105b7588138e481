// Package benchmarks holds the end-to-end throughput benchmarks of iocd:
// a real nats-server process, a real ClickHouse server and the iocd binary,
// measured from the outside (wall time, CPU time and peak RSS of each
// process). The benchmarks need the integration build tag; see README.md
// for how to run them and for the latest figures.
package benchmarks
