package main

import (
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/zerolog"
	_ "github.com/valyala/fastjson"
	_ "go.yaml.in/yaml/v3"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
)

func main() {}
