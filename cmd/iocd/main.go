// Command iocd is the iocstream processor: it consumes events from NATS
// JetStream, validates and windows them, and writes them to ClickHouse.
//
//	iocd [run] [--config FILE] [--rules FILE]   run the pipeline (the default)
//	iocd migrate [--config FILE] apply schemas/clickhouse migrations
//	iocd rules check FILE        validate a rules file, every problem with its line
//	iocd version                 print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Println("iocd", buildVersion())
		return 0
	case "rules":
		return rulesCommand(args, os.Stdout, os.Stderr)
	case "run", "migrate":
	case "help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "iocd: unknown command %q\n", cmd)
		usage()
		return 2
	}
	fs := flag.NewFlagSet("iocd "+cmd, flag.ContinueOnError)
	configPath := fs.String("config", os.Getenv("IOC_CONFIG"), "YAML configuration `file` (IOC_* variables override it)")
	rules := fs.String("rules", "", "alert rules `file`; overrides IOC_RULES and the configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "iocd:", err)
		return 2
	}
	if *rules != "" {
		cfg.Rules = *rules
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "migrate":
		err = daemon.Migrate(ctx, cfg, log)
	default:
		err = daemon.Serve(ctx, cfg, buildVersion(), log)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// A stop asked for before the pipeline ran: nothing was
			// consumed, so nothing is owed, and a supervisor must not
			// count it as a failure.
			log.Info().Err(err).Msg("stopped by a signal during start-up")
			return 0
		}
		log.Error().Err(err).Msg("iocd stopped with an error")
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  iocd [run] [--config FILE] [--rules FILE]
                                run the pipeline (default)
  iocd migrate [--config FILE]  apply the ClickHouse migrations and exit
  iocd rules check FILE         validate a rules file (exit 1 with every problem and its line)
  iocd version                  print the version
Every setting can also be given as an IOC_* environment variable; see README.md.
`)
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// newLogger logs JSON, one event per line, or a readable form on a terminal.
func newLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Str("service", "iocd").Logger()
}
