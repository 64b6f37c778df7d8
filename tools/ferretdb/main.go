// Command ferretdb runs FerretDB 1.x, a MongoDB-wire server, on SQLite files, for earshot's
// tests and local development: `make services` builds and starts it on 127.0.0.1:27018.
//
// It embeds FerretDB as a library because the module's own command panics at start when
// installed with `go install` (its build/version/version.txt is not part of the module).
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on (loopback only)")
	data := flag.String("data", "data", "directory of the SQLite files")
	flag.Parse()

	dir, err := filepath.Abs(*data)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}

	// Telemetry is off: the library disables it when embedded.
	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("ferretdb listening on %s, data in %s", *listen, dir)
	server.Run(ctx)
}
