// Command admission checks Kubernetes manifests with the admission code of Knative Serving,
// Knative Eventing and eventing-rabbitmq, in the order a cluster applies it: strict decoding,
// the CRD's structural schema, the defaulting webhooks, schema validation, the validating webhooks.
//
//	admission [-namespace earshot] PATH...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/logging"
	webhookjson "knative.dev/pkg/webhook/json"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	eventingfake "knative.dev/eventing/pkg/client/clientset/versioned/fake"
	eventingclient "knative.dev/eventing/pkg/client/injection/client"
)

// object is one YAML document on its way through admission.
type object struct {
	file, kind, name string
	kindInfo         *kindInfo
	body             map[string]any
	mutated          []byte // after every defaulting webhook, as the API server would store it
	failure          string
	warnings         []string
}

func main() {
	namespace := flag.String("namespace", "earshot", "namespace for objects that set none (as kubectl apply --namespace)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: admission [-namespace NAME] PATH...\n  PATH is a YAML file or a directory (every *.yaml and *.yml below it)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	files, err := yamlFiles(flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "admission: %v\n", err)
		os.Exit(2)
	}
	up, err := loadUpstream()
	if err != nil {
		fmt.Fprintf(os.Stderr, "admission: %v\n", err)
		os.Exit(2)
	}

	ctx := logging.WithLogger(context.Background(), zap.NewNop().Sugar())
	var objects []*object
	for _, file := range files {
		docs, err := readDocuments(file)
		if err != nil {
			objects = append(objects, &object{file: file, kind: "file", name: filepath.Base(file), failure: err.Error()})
			continue
		}
		for i, doc := range docs {
			objects = append(objects, decode(file, i+1, doc, *namespace, up))
		}
	}

	// All defaulting first: rabbit's Trigger validation reads the Trigger's Broker through a
	// clientset, so it is given the Brokers of this manifest set as the cluster would store them.
	var brokers []runtime.Object
	for _, o := range objects {
		if o.failure == "" {
			o.mutate(ctx, up)
			if o.failure == "" && o.kindInfo.broker != nil {
				if b, err := o.kindInfo.broker(o.mutated); err == nil {
					brokers = append(brokers, b)
				}
			}
		}
	}
	ctx = context.WithValue(ctx, eventingclient.Key{}, eventingfake.NewSimpleClientset(brokers...))

	errorCount, warningCount := 0, 0
	for _, o := range objects {
		if o.failure == "" {
			o.validate(ctx, up)
		}
		for _, w := range o.warnings {
			fmt.Printf("warn %s/%s (%s): %s\n", o.kind, o.name, o.file, oneLine(w))
		}
		warningCount += len(o.warnings)
		if o.failure != "" {
			errorCount++
			fmt.Printf("FAIL %s/%s (%s): %s\n", o.kind, o.name, o.file, oneLine(o.failure))
		} else {
			fmt.Printf("ok   %s/%s (%s)\n", o.kind, o.name, o.file)
		}
	}
	fmt.Printf("admission: %d objects, %d errors, %d warnings\n", len(objects), errorCount, warningCount)
	if errorCount > 0 {
		os.Exit(1)
	}
}

func yamlFiles(paths []string) ([]string, error) {
	var files []string
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// readDocuments splits a file at "---", leaving out documents that hold only comments.
func readDocuments(file string) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		} else if err != nil {
			return nil, err
		}
		var probe any
		if yaml.Unmarshal(doc, &probe) == nil && probe == nil {
			continue
		}
		docs = append(docs, doc)
	}
}

// decode is what the API server does before any webhook: strict decoding (duplicate and unknown
// fields are errors), the CRD's pruning and defaults; then the Go type's own strict decoding.
func decode(file string, index int, doc []byte, namespace string, up *upstream) *object {
	o := &object{file: file, kind: "document", name: fmt.Sprint(index)}
	fail := func(format string, args ...any) *object {
		o.failure = fmt.Sprintf(format, args...)
		return o
	}
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fail("strict decoding error: %v", err)
	}
	if err := json.Unmarshal(j, &o.body); err != nil || o.body == nil {
		return fail("not a Kubernetes object")
	}
	apiVersion, _ := o.body["apiVersion"].(string)
	o.kind, _ = o.body["kind"].(string)
	meta, _ := o.body["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		o.body["metadata"] = meta
	}
	o.name, _ = meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns == "" {
		meta["namespace"] = namespace
	}
	o.kindInfo = kinds[apiVersion+"/"+o.kind]
	if o.kindInfo == nil {
		return fail("unknown apiVersion/kind %s %s", apiVersion, o.kind)
	}
	if o.name == "" {
		return fail("metadata.name is required")
	}

	if crd := up.crds[o.kindInfo.crd]; crd != nil {
		if unknown := crd.prune(o.body, true); len(unknown) > 0 {
			for i := range unknown {
				unknown[i] = strconv.Quote(unknown[i])
			}
			return fail("strict decoding error: unknown field %s", strings.Join(unknown, ", "))
		}
		crd.defaults(o.body)
	}
	j, _ = json.Marshal(o.body)
	strict, err := kjson.UnmarshalStrict(j, o.kindInfo.goType(), kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fail("decoding error: %v", err)
	}
	if len(strict) > 0 {
		return fail("strict decoding error: %v", errors.Join(strict...))
	}
	return o
}

// mutate runs the object through each defaulting webhook in turn, each decoding the previous one's
// output into its own Go type, as the mutating webhook chain does.
func (o *object) mutate(ctx context.Context, up *upstream) {
	o.mutated, _ = json.Marshal(o.body)
	for _, wh := range o.kindInfo.webhooks {
		obj := wh.newObject()
		if err := webhookjson.Decode(o.mutated, obj, wh.disallowUnknownFields); err != nil {
			o.failure = fmt.Sprintf("admission webhook %q denied the request: mutation failed: cannot decode incoming new object: %v", wh.defaulting, err)
			return
		}
		obj.SetDefaults(apis.WithinCreate(up.webhookContext(ctx, wh.config)))
		o.mutated, _ = json.Marshal(obj)
	}
}

// validate checks the defaulted object against the CRD schema, then with each validating webhook.
func (o *object) validate(ctx context.Context, up *upstream) {
	if crd := up.crds[o.kindInfo.crd]; crd != nil {
		var body map[string]any
		_ = json.Unmarshal(o.mutated, &body)
		crd.prune(body, false)
		crd.defaults(body)
		if errs := crd.validate(body); errs != "" {
			o.failure = fmt.Sprintf("%s %q is invalid: %s", o.kind, o.name, errs)
			return
		}
	}
	var denials []string
	for _, wh := range o.kindInfo.webhooks {
		obj := wh.newObject()
		if err := webhookjson.Decode(o.mutated, obj, wh.disallowUnknownFields); err != nil {
			denials = append(denials, fmt.Sprintf("admission webhook %q denied the request: decoding request failed: %v", wh.validating, err))
			continue
		}
		result := obj.Validate(apis.WithinCreate(up.webhookContext(ctx, wh.config)))
		if e := result.Filter(apis.ErrorLevel); e != nil {
			denials = append(denials, fmt.Sprintf("admission webhook %q denied the request: validation failed: %v", wh.validating, e))
		}
		if w := result.Filter(apis.WarningLevel); w != nil {
			for _, e := range w.WrappedErrors() {
				o.warnings = append(o.warnings, fmt.Sprintf("%s: %v", wh.validating, e))
			}
		}
	}
	o.failure = strings.Join(denials, "; ")
}

func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
