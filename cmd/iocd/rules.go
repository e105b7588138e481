package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/iocstream/iocstream/internal/alert"
)

// rulesCommand runs `iocd rules check FILE`: every problem with its line,
// exit 1 when there is any.
func rulesCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: iocd rules check FILE")
		return 2
	}
	file := args[1]
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	rules, err := alert.ParseRules(data)
	var errs alert.Errors
	switch {
	case errors.As(err, &errs):
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s:%d: %s\n", file, e.Line, e.Msg)
		}
		fmt.Fprintf(stderr, "%s: %d problem(s)\n", file, len(errs))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d rules OK\n", file, len(rules))
	return 0
}
