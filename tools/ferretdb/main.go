// Command ferretdb runs FerretDB 1.x, a MongoDB-wire server, on SQLite files or on a PostgreSQL
// database, for earshot's tests and local development: `make services` builds it and starts one
// on each backend (tools/services.sh says which listens on 127.0.0.1:27018).
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
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	data := flag.String("data", "data", "directory of the SQLite files (-handler sqlite)")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL database, e.g. postgres://user@127.0.0.1:5433/ferretdb (-handler postgresql)")
	flag.Parse()

	// Telemetry is off: the library disables it when embedded.
	config := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  *handler,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var where string
	switch *handler {
	case "sqlite":
		dir, err := filepath.Abs(*data)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatal(err)
		}
		config.SQLiteURL = "file:" + dir + "/"
		where = "SQLite files in " + dir
	case "postgresql":
		if *postgresqlURL == "" {
			log.Fatal("-handler postgresql needs -postgresql-url")
		}
		config.PostgreSQLURL = *postgresqlURL
		where = "PostgreSQL " + *postgresqlURL
	default:
		log.Fatalf("-handler %q: sqlite or postgresql", *handler)
	}

	server, err := ferretdb.New(config)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("ferretdb listening on %s, data in %s", *listen, where)
	server.Run(ctx)
}
