package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/mod/module"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/webhook/resourcesemantics"
	"sigs.k8s.io/yaml"

	rabbitmqcluster "github.com/rabbitmq/cluster-operator/api/v1beta1"
	rabbit "knative.dev/eventing-rabbitmq/pkg/apis/eventing/v1alpha1"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

const (
	servingModule  = "knative.dev/serving"
	eventingModule = "knative.dev/eventing"
	rabbitModule   = "knative.dev/eventing-rabbitmq"
	clusterModule  = "github.com/rabbitmq/cluster-operator"
)

// crdRef names a CRD file inside a module this program is built with, and the version to use.
type crdRef struct{ module, file, version string }

type configSet int

const (
	servingConfig configSet = iota
	eventingConfig
	rabbitConfig
)

// webhook is one of upstream's admission webhooks for a kind, set up as its cmd/webhook sets it up.
type webhook struct {
	defaulting, validating string
	newObject              func() resourcesemantics.GenericCRD
	disallowUnknownFields  bool
	config                 configSet
}

type kindInfo struct {
	crd      crdRef // zero for core kinds
	goType   func() any
	webhooks []webhook
	broker   func(mutated []byte) (runtime.Object, error)
}

// The webhooks and their settings are those of each project's cmd/webhook/main.go.
var (
	servingWebhook = func(newObject func() resourcesemantics.GenericCRD) webhook {
		return webhook{"webhook.serving.knative.dev", "validation.webhook.serving.knative.dev", newObject, false, servingConfig}
	}
	eventingWebhook = func(newObject func() resourcesemantics.GenericCRD) webhook {
		return webhook{"webhook.eventing.knative.dev", "validation.webhook.eventing.knative.dev", newObject, true, eventingConfig}
	}
	rabbitWebhook = func(newObject func() resourcesemantics.GenericCRD) webhook {
		return webhook{"defaulting.webhook.rabbitmq.eventing.knative.dev", "validation.webhook.rabbitmq.eventing.knative.dev", newObject, true, rabbitConfig}
	}
)

var kinds = map[string]*kindInfo{
	"serving.knative.dev/v1/Service": {
		crd:      crdRef{servingModule, "config/core/300-resources/service.yaml", "v1"},
		goType:   func() any { return &servingv1.Service{} },
		webhooks: []webhook{servingWebhook(func() resourcesemantics.GenericCRD { return &servingv1.Service{} })},
	},
	"eventing.knative.dev/v1/Broker": {
		crd:    crdRef{eventingModule, "config/core/resources/broker.yaml", "v1"},
		goType: func() any { return &eventingv1.Broker{} },
		webhooks: []webhook{
			eventingWebhook(func() resourcesemantics.GenericCRD { return &eventingv1.Broker{} }),
			rabbitWebhook(func() resourcesemantics.GenericCRD { return &rabbit.RabbitBroker{} }),
		},
		broker: func(mutated []byte) (runtime.Object, error) {
			b := &eventingv1.Broker{}
			return b, json.Unmarshal(mutated, b)
		},
	},
	"eventing.knative.dev/v1/Trigger": {
		crd:    crdRef{eventingModule, "config/core/resources/trigger.yaml", "v1"},
		goType: func() any { return &eventingv1.Trigger{} },
		webhooks: []webhook{
			eventingWebhook(func() resourcesemantics.GenericCRD { return &eventingv1.Trigger{} }),
			rabbitWebhook(func() resourcesemantics.GenericCRD { return &rabbit.RabbitTrigger{} }),
		},
	},
	"sources.knative.dev/v1/SinkBinding": {
		crd:      crdRef{eventingModule, "config/core/resources/sinkbindings.yaml", "v1"},
		goType:   func() any { return &sourcesv1.SinkBinding{} },
		webhooks: []webhook{eventingWebhook(func() resourcesemantics.GenericCRD { return &sourcesv1.SinkBinding{} })},
	},
	"sources.knative.dev/v1/PingSource": {
		crd:      crdRef{eventingModule, "config/core/resources/pingsource.yaml", "v1"},
		goType:   func() any { return &sourcesv1.PingSource{} },
		webhooks: []webhook{eventingWebhook(func() resourcesemantics.GenericCRD { return &sourcesv1.PingSource{} })},
	},
	"eventing.knative.dev/v1alpha1/RabbitmqBrokerConfig": {
		crd:      crdRef{rabbitModule, "config/broker/300-rabbitmqbrokerconfig.yaml", "v1alpha1"},
		goType:   func() any { return &rabbit.RabbitmqBrokerConfig{} },
		webhooks: []webhook{rabbitWebhook(func() resourcesemantics.GenericCRD { return &rabbit.RabbitmqBrokerConfig{} })},
	},
	// The cluster operator has no admission webhook: its CRD schema is all the API server checks.
	"rabbitmq.com/v1beta1/RabbitmqCluster": {
		crd:    crdRef{clusterModule, "config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml", "v1beta1"},
		goType: func() any { return &rabbitmqcluster.RabbitmqCluster{} },
	},
	"v1/ConfigMap": {goType: func() any { return &corev1.ConfigMap{} }},
	"v1/Secret":    {goType: func() any { return &corev1.Secret{} }},
}

// upstream holds what the cluster would have installed: the CRDs and the webhooks' ConfigMaps,
// both read from the module cache so that they are the release this program is built with.
type upstream struct {
	crds             map[crdRef]*crd
	serving          *servingconfig.Store
	eventingDefaults *eventingconfig.Store
	eventingFeatures *feature.Store
}

func loadUpstream() (*upstream, error) {
	dirs, err := moduleDirs()
	if err != nil {
		return nil, err
	}
	read := func(mod, file string) ([]byte, error) {
		dir, ok := dirs[mod]
		if !ok {
			return nil, fmt.Errorf("%s is not among this program's modules", mod)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("%w (run `go mod download` in tools/admission)", err)
		}
		return b, nil
	}

	up := &upstream{crds: map[crdRef]*crd{}}
	for _, k := range kinds {
		if k.crd == (crdRef{}) {
			continue
		}
		b, err := read(k.crd.module, k.crd.file)
		if err != nil {
			return nil, err
		}
		if up.crds[k.crd], err = newCRD(b, k.crd.version); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", k.crd.module, k.crd.file, err)
		}
	}

	// A fresh install's ConfigMaps, fed to the same stores the webhooks keep them in.
	logger := zap.NewNop().Sugar()
	up.serving = servingconfig.NewStore(logger)
	up.eventingDefaults = eventingconfig.NewStore(logger)
	up.eventingFeatures = feature.NewStore(logger)
	configMaps := []struct {
		store     *configmap.UntypedStore
		mod, file string
	}{
		{up.serving.UntypedStore, servingModule, "config/core/configmaps/defaults.yaml"},
		{up.serving.UntypedStore, servingModule, "config/core/configmaps/features.yaml"},
		{up.serving.UntypedStore, servingModule, "config/core/configmaps/autoscaler.yaml"},
		{up.eventingDefaults.UntypedStore, eventingModule, "config/core/configmaps/default-broker.yaml"},
		{up.eventingFeatures.UntypedStore, eventingModule, "config/core/configmaps/features.yaml"},
	}
	for _, c := range configMaps {
		b, err := read(c.mod, c.file)
		if err != nil {
			return nil, err
		}
		cm := &corev1.ConfigMap{}
		if err := yaml.Unmarshal(b, cm); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", c.mod, c.file, err)
		}
		c.store.OnConfigChanged(cm)
		if c.store.UntypedLoad(cm.Name) == nil {
			return nil, fmt.Errorf("%s/%s: upstream rejects its own ConfigMap %s", c.mod, c.file, cm.Name)
		}
	}
	return up, nil
}

// webhookContext is what each webhook's context function adds to a request's context.
func (up *upstream) webhookContext(ctx context.Context, set configSet) context.Context {
	switch set {
	case servingConfig:
		return up.serving.ToContext(ctx)
	case eventingConfig:
		return up.eventingFeatures.ToContext(up.eventingDefaults.ToContext(ctx))
	default:
		// rabbit's webhook also puts an eventing clientset there; main adds a fake one.
		return up.eventingFeatures.ToContext(ctx)
	}
}

// moduleDirs maps each module this binary was built with to its directory in the module cache.
func moduleDirs() (map[string]string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil, fmt.Errorf("no build information in this binary")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	cache := strings.TrimSpace(string(out))
	if err != nil || cache == "" {
		return nil, fmt.Errorf("the CRDs are read from Go's module cache, and `go env GOMODCACHE` failed: %v", err)
	}
	dirs := map[string]string{}
	for _, m := range info.Deps {
		path, version := m.Path, m.Version
		if m.Replace != nil {
			path, version = m.Replace.Path, m.Replace.Version
		}
		escPath, err1 := module.EscapePath(path)
		escVersion, err2 := module.EscapeVersion(version)
		if err1 == nil && err2 == nil {
			dirs[m.Path] = filepath.Join(cache, escPath+"@"+escVersion)
		}
	}
	return dirs, nil
}

// crd applies one version's structural schema the way the API server's custom resource handler does.
type crd struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
}

func newCRD(file []byte, version string) (*crd, error) {
	var def apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(file, &def); err != nil {
		return nil, err
	}
	for _, v := range def.Spec.Versions {
		if v.Name != version || v.Schema == nil {
			continue
		}
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return nil, err
		}
		structural, err := structuralschema.NewStructural(internal)
		if err != nil {
			return nil, err
		}
		validator, _, err := apiservervalidation.NewSchemaValidator(internal)
		if err != nil {
			return nil, err
		}
		return &crd{structural, validator}, nil
	}
	return nil, fmt.Errorf("no schema for version %s", version)
}

// prune removes the fields the schema does not declare and returns their paths.
func (c *crd) prune(body map[string]any, track bool) []string {
	unknown := structuralpruning.PruneWithOptions(body, c.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: track})
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(body, c.structural)
	return unknown
}

func (c *crd) defaults(body map[string]any) {
	structuraldefaulting.Default(body, c.structural)
}

func (c *crd) validate(body map[string]any) string {
	if errs := apiservervalidation.ValidateCustomResource(nil, body, c.validator); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	return ""
}
