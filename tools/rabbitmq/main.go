// Command topology does, on one machine, what eventing-rabbitmq's controller and RabbitMQ's
// messaging-topology-operator do in Kubernetes for earshot's Broker and Triggers: it builds the
// Exchange, Queue, Binding and Policy objects with eventing-rabbitmq's own constructors and names
// (v0.48.0, the version go.mod pins), declares them in RabbitMQ, and prints as JSON those objects
// and the data-plane processes to start (ingress, one dispatcher per Trigger queue and per
// dead-letter queue) with the env the controller gives their containers.
//
//	rabbitmq-topology -repo . -vhost earshot -ingress http://127.0.0.1:8090 \
//	  -url convert=http://127.0.0.1:8082 -url notify=… -url deadletter=…
//
// The ingress and dispatcher binaries are built from the same module (the `tool` lines in go.mod).
package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	eventingv1alpha1 "knative.dev/eventing-rabbitmq/pkg/apis/eventing/v1alpha1"
	"knative.dev/eventing-rabbitmq/pkg/rabbit"
	naming "knative.dev/eventing-rabbitmq/pkg/rabbitmqnaming"
	brokerresources "knative.dev/eventing-rabbitmq/pkg/reconciler/broker/resources"
	triggerresources "knative.dev/eventing-rabbitmq/pkg/reconciler/trigger/resources"
	rabbitv1beta1 "knative.dev/eventing-rabbitmq/third_party/pkg/apis/rabbitmq.com/v1beta1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
	"knative.dev/pkg/ptr"
	"sigs.k8s.io/yaml"
)

type urlFlags map[string]string

func (u urlFlags) String() string { return fmt.Sprint(map[string]string(u)) }
func (u urlFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want NAME=URL, got %q", v)
	}
	u[name] = value
	return nil
}

// Process is one data-plane program: Env is what the controller puts in its Deployment (the
// Secret reference resolved); LocalEnv is what running it beside the others on one host adds.
type Process struct {
	Name     string            `json:"name"`
	Command  string            `json:"command"`
	Env      map[string]string `json:"env"`
	LocalEnv map[string]string `json:"localEnv,omitempty"`
}

type Output struct {
	Vhost     string                    `json:"vhost"`
	Exchanges []*rabbitv1beta1.Exchange `json:"exchanges"`
	Queues    []*rabbitv1beta1.Queue    `json:"queues"`
	Bindings  []*rabbitv1beta1.Binding  `json:"bindings"`
	Policies  []*rabbitv1beta1.Policy   `json:"policies"`
	Processes []Process                 `json:"processes"`
}

func main() {
	urls := urlFlags{}
	repo := flag.String("repo", ".", "the earshot checkout (eventing/ and knative/ are read from it)")
	namespace := flag.String("namespace", "earshot", "the Kubernetes namespace the names are made for")
	vhost := flag.String("vhost", "", "RabbitMQ vhost (created when missing); empty: the RabbitmqBrokerConfig's, else /")
	amqpURL := flag.String("amqp", "amqp://earshot:earshot-local-dev@127.0.0.1:5673", "RabbitMQ URL as the controller's Secret holds it (no vhost)")
	mgmtURL := flag.String("management", "http://127.0.0.1:15673", "RabbitMQ management API (user and password: as in the URL, else -amqp's)")
	ingressURL := flag.String("ingress", "http://127.0.0.1:8090", "where the ingress listens (the Broker's address)")
	bin := flag.String("bin", "", "directory of rabbitmq-ingress and rabbitmq-dispatcher (default: this program's)")
	declare := flag.Bool("declare", true, "declare the objects in RabbitMQ (false: only print)")
	out := flag.String("o", "-", "write the JSON here")
	systemNamespace := flag.String("system-namespace", "knative-eventing", "the namespace eventing-rabbitmq's controller runs in")
	flag.Var(urls, "url", "NAME=URL: where the Knative Service NAME (a subscriber or dead-letter sink) listens; repeatable")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("rabbitmq-topology: ")

	// The resource builders copy system.Namespace(), the controller's namespace, into SYSTEM_NAMESPACE;
	// a package imported by pkg/rabbit sets it to knative-testing in its init, so set it here.
	os.Setenv("SYSTEM_NAMESPACE", *systemNamespace)
	if *bin == "" {
		exe, err := os.Executable()
		check(err)
		*bin = filepath.Dir(exe)
	}

	m := readManifests(*repo, *namespace)
	if *vhost == "" {
		*vhost = m.config.Spec.Vhost
	}
	ingress, err := apis.ParseURL(*ingressURL)
	check(err)
	resolve := func(d duckv1.Destination) *duckv1.Addressable {
		if d.URI != nil && d.Ref == nil {
			return &duckv1.Addressable{URL: d.URI}
		}
		if d.Ref == nil || d.Ref.Kind != "Service" || !m.services[d.Ref.Name] {
			log.Fatalf("%+v is not a Knative Service in knative/", d)
		}
		u, ok := urls[d.Ref.Name]
		if !ok {
			log.Fatalf("no -url %s=… given", d.Ref.Name)
		}
		parsed, err := apis.ParseURL(u)
		check(err)
		return &duckv1.Addressable{URL: parsed}
	}

	o := build(m, *vhost, *amqpURL, ingress, resolve, *bin)
	if *declare {
		check(apply(o, *amqpURL, *mgmtURL))
	}
	data, err := json.MarshalIndent(o, "", "  ")
	check(err)
	if *out == "-" {
		os.Stdout.Write(append(data, '\n'))
	} else {
		check(os.WriteFile(*out, append(data, '\n'), 0o644))
	}
}

type manifests struct {
	config   eventingv1alpha1.RabbitmqBrokerConfig
	brokers  map[string]*eventingv1.Broker
	triggers []*eventingv1.Trigger
	services map[string]bool
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func readManifests(repo, namespace string) manifests {
	m := manifests{brokers: map[string]*eventingv1.Broker{}, services: map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(repo, "knative", "*.yaml"))
	check(err)
	files = append(files, filepath.Join(repo, "eventing", "rabbitmq.yaml"), filepath.Join(repo, "eventing", "broker.yaml"), filepath.Join(repo, "eventing", "triggers.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		check(err)
		for _, doc := range documentSeparator.Split(string(data), -1) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct{ Name string }
			}
			check(yaml.Unmarshal([]byte(doc), &head))
			kind := head.Kind + "." + head.APIVersion
			switch kind {
			case "Service.serving.knative.dev/v1":
				m.services[head.Metadata.Name] = true
			case "RabbitmqBrokerConfig.eventing.knative.dev/v1alpha1":
				check(yaml.UnmarshalStrict([]byte(doc), &m.config))
			case "Broker.eventing.knative.dev/v1":
				b := &eventingv1.Broker{}
				check(yaml.UnmarshalStrict([]byte(doc), b))
				m.brokers[b.Name] = b
			case "Trigger.eventing.knative.dev/v1":
				t := &eventingv1.Trigger{}
				check(yaml.UnmarshalStrict([]byte(doc), t))
				m.triggers = append(m.triggers, t)
			}
		}
	}
	// As the API server and Knative's defaulting would leave them; UIDs are stable per name
	// (names carry them) so a restart finds its durable queues again.
	for _, b := range m.brokers {
		b.Namespace, b.UID = namespace, uid(namespace, "Broker", b.Name)
		if b.Spec.Config != nil && b.Spec.Config.Namespace == "" {
			b.Spec.Config.Namespace = namespace
		}
	}
	for _, t := range m.triggers {
		t.Namespace, t.UID = namespace, uid(namespace, "Trigger", t.Name)
	}
	if m.config.Spec.RabbitmqClusterReference == nil {
		log.Fatal("eventing/rabbitmq.yaml has no RabbitmqBrokerConfig with a rabbitmqClusterReference")
	}
	if m.config.Spec.RabbitmqClusterReference.Namespace == "" {
		m.config.Spec.RabbitmqClusterReference.Namespace = namespace
	}
	return m
}

func uid(namespace, kind, name string) types.UID {
	h := sha1.Sum([]byte(namespace + "/" + kind + "/" + name))
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

// build follows pkg/reconciler/broker and pkg/reconciler/trigger (ReconcileKind) step by step.
func build(m manifests, vhost, amqpURL string, ingress *apis.URL, resolve func(duckv1.Destination) *duckv1.Addressable, bin string) *Output {
	o := &Output{Vhost: vhost}
	ref := m.config.Spec.RabbitmqClusterReference
	queueType := m.config.Spec.QueueType
	env := func(c corev1.Container, secret *corev1.Secret) map[string]string {
		e := map[string]string{}
		for _, v := range c.Env {
			if v.ValueFrom != nil { // the only one is the Secret with the broker URL
				e[v.Name] = secret.StringData[v.ValueFrom.SecretKeyRef.Key]
			} else {
				e[v.Name] = v.Value
			}
		}
		return e
	}
	names := make([]string, 0, len(m.brokers))
	for name := range m.brokers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := m.brokers[name]
		b.Status.SetAddress(&duckv1.Addressable{URL: ingress})
		secret := rabbit.MakeSecret(b.Name, "broker", b.Namespace, amqpURL, b)
		args := &rabbit.ExchangeArgs{Name: naming.BrokerExchangeName(b, false), Namespace: b.Namespace,
			RabbitMQVhost: vhost, RabbitmqClusterReference: ref, RabbitMQURL: amqpURL, Broker: b}
		o.Exchanges = append(o.Exchanges, rabbit.NewExchange(args))
		if b.Spec.Delivery != nil && b.Spec.Delivery.DeadLetterSink != nil {
			dlx := naming.BrokerExchangeName(b, true)
			dlq := naming.CreateBrokerDeadLetterQueueName(b)
			args.Name = dlx
			o.Exchanges = append(o.Exchanges, rabbit.NewExchange(args))
			qargs := &rabbit.QueueArgs{Name: dlq, Namespace: b.Namespace, RabbitMQVhost: vhost, RabbitmqClusterReference: ref,
				Owner: *kmeta.NewControllerRef(b), Labels: rabbit.Labels(b, nil, nil), QueueType: queueType}
			o.Queues = append(o.Queues, rabbit.NewQueue(qargs))
			binding, err := rabbit.NewBinding(&rabbit.BindingArgs{Name: dlq, Namespace: b.Namespace, RabbitmqClusterReference: ref,
				RabbitMQVhost: vhost, Source: dlx, Destination: dlq, Owner: *kmeta.NewControllerRef(b),
				Labels: rabbit.Labels(b, nil, nil), Filters: map[string]string{rabbit.DLQBindingKey: b.Name}})
			check(err)
			o.Bindings = append(o.Bindings, binding)
			o.Policies = append(o.Policies, rabbit.NewBrokerDLXPolicy(&rabbit.QueueArgs{Name: dlq, Namespace: b.Namespace,
				RabbitMQVhost: vhost, RabbitmqClusterReference: ref, Owner: *kmeta.NewControllerRef(b),
				Labels: rabbit.Labels(b, nil, nil), DLXName: ptr.String(dlx), BrokerUID: string(b.UID)}))
			d := brokerresources.MakeDispatcherDeployment(&brokerresources.DispatcherArgs{Broker: b, Image: filepath.Join(bin, "rabbitmq-dispatcher"),
				Delivery: b.Spec.Delivery, RabbitMQSecretName: secret.Name, RabbitMQVhost: vhost, QueueName: dlq,
				BrokerUrlSecretKey: rabbit.BrokerURLSecretKey, Subscriber: resolve(*b.Spec.Delivery.DeadLetterSink),
				BrokerIngressURL: b.Status.Address.URL, DLX: true})
			o.Processes = append(o.Processes, process(d.Name, d.Spec.Template.Spec.Containers[0], env, secret, nil))
		}
		d := brokerresources.MakeIngressDeployment(&brokerresources.IngressArgs{Broker: b, Image: filepath.Join(bin, "rabbitmq-ingress"),
			RabbitMQSecretName: secret.Name, BrokerUrlSecretKey: rabbit.BrokerURLSecretKey, RabbitMQVhost: vhost})
		// In Kubernetes a Service maps port 80 to the pod's 8080; here the ingress listens where the dispatchers send replies.
		port := ingress.URL().Port()
		if port == "" {
			port = "80"
		}
		o.Processes = append([]Process{process(d.Name, d.Spec.Template.Spec.Containers[0], env, secret, map[string]string{"PORT": port})}, o.Processes...)

		for _, t := range m.triggers {
			if t.Spec.Broker != b.Name {
				continue
			}
			var dlxName *string
			if t.Spec.Delivery != nil && t.Spec.Delivery.DeadLetterSink != nil {
				dlxName = ptr.String(naming.TriggerDLXExchangeName(t))
				o.Exchanges = append(o.Exchanges, rabbit.NewExchange(&rabbit.ExchangeArgs{Name: *dlxName, Namespace: t.Namespace,
					Broker: b, RabbitmqClusterReference: ref, RabbitMQVhost: vhost, Trigger: t}))
				dlq := naming.CreateTriggerDeadLetterQueueName(t)
				o.Queues = append(o.Queues, rabbit.NewQueue(&rabbit.QueueArgs{Name: dlq, Namespace: t.Namespace,
					RabbitmqClusterReference: ref, RabbitMQVhost: vhost, Owner: *kmeta.NewControllerRef(t),
					Labels: rabbit.Labels(b, t, nil), QueueType: queueType}))
				binding, err := rabbit.NewBinding(&rabbit.BindingArgs{Name: dlq, Namespace: t.Namespace, RabbitmqClusterReference: ref,
					RabbitMQVhost: vhost, Source: *dlxName, Destination: dlq, Owner: *kmeta.NewControllerRef(t), Labels: rabbit.Labels(b, t, nil)})
				check(err)
				o.Bindings = append(o.Bindings, binding)
				o.Processes = append(o.Processes, triggerDispatcher(t, b, secret, vhost, dlq, resolve(*t.Spec.Delivery.DeadLetterSink),
					t.Spec.Delivery, true, "", bin, env))
			}
			queueArgs := &rabbit.QueueArgs{Name: naming.CreateTriggerQueueName(t), Namespace: t.Namespace,
				QueueName: naming.CreateTriggerQueueRabbitName(t, string(b.UID)), RabbitmqClusterReference: ref,
				RabbitMQVhost: vhost, Owner: *kmeta.NewControllerRef(t), Labels: rabbit.Labels(b, t, nil), DLXName: dlxName, QueueType: queueType}
			o.Queues = append(o.Queues, rabbit.NewQueue(queueArgs))
			if dlxName != nil {
				o.Policies = append(o.Policies, rabbit.NewPolicy(queueArgs))
			}
			filters := map[string]string{}
			if t.Spec.Filter != nil {
				for k, v := range t.Spec.Filter.Attributes {
					filters[k] = v
				}
			}
			filters[rabbit.BindingKey] = t.Name
			binding, err := rabbit.NewBinding(&rabbit.BindingArgs{Name: naming.CreateTriggerQueueName(t), Namespace: t.Namespace,
				RabbitmqClusterReference: ref, RabbitMQVhost: vhost, Source: naming.BrokerExchangeName(b, false),
				Destination: queueArgs.QueueName, Owner: *kmeta.NewControllerRef(t), Labels: rabbit.Labels(b, t, nil), Filters: filters})
			check(err)
			o.Bindings = append(o.Bindings, binding)
			delivery := t.Spec.Delivery
			if delivery == nil {
				delivery = b.Spec.Delivery
				dlxName = ptr.String(naming.BrokerExchangeName(b, true))
			}
			o.Processes = append(o.Processes, triggerDispatcher(t, b, secret, vhost, queueArgs.QueueName, resolve(t.Spec.Subscriber),
				delivery, false, ptr.StringValue(dlxName), bin, env))
		}
	}
	return o
}

func triggerDispatcher(t *eventingv1.Trigger, b *eventingv1.Broker, secret *corev1.Secret, vhost, queue string, sub *duckv1.Addressable,
	delivery *eventingduckv1.DeliverySpec, dlq bool, dlxName, bin string, env func(corev1.Container, *corev1.Secret) map[string]string) Process {
	d := triggerresources.MakeDispatcherDeployment(&triggerresources.DispatcherArgs{Trigger: t, Image: filepath.Join(bin, "rabbitmq-dispatcher"),
		RabbitMQSecretName: secret.Name, RabbitMQVHost: vhost, QueueName: queue, BrokerUrlSecretKey: rabbit.BrokerURLSecretKey,
		BrokerIngressURL: b.Status.Address.URL, Subscriber: sub, DLX: dlq, DLXName: dlxName, Delivery: delivery})
	return process(d.Name, d.Spec.Template.Spec.Containers[0], env, secret, nil)
}

func process(name string, c corev1.Container, env func(corev1.Container, *corev1.Secret) map[string]string, secret *corev1.Secret, local map[string]string) Process {
	return Process{Name: name, Command: c.Image, Env: env(c, secret), LocalEnv: local}
}

// apply declares what the topology operator would for each object's spec (it uses the management
// API throughout; AMQP declarations give RabbitMQ the same exchange, queue and binding).
func apply(o *Output, amqpURL, mgmtURL string) error {
	vhost := o.Vhost
	if vhost == "" {
		vhost = "/"
	}
	mgmt := func(method, path string, body any) error {
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(context.Background(), method, strings.TrimSuffix(mgmtURL, "/")+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		// The management URL's credentials, else the AMQP URL's.
		for _, raw := range []string{mgmtURL, amqpURL} {
			if u, err := url.Parse(raw); err == nil && u.User != nil {
				p, _ := u.User.Password()
				req.SetBasicAuth(u.User.Username(), p)
				break
			}
		}
		req.Header.Set("content-type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode >= 300 {
			text, _ := io.ReadAll(res.Body)
			return fmt.Errorf("%s %s: %s %s", method, path, res.Status, text)
		}
		return nil
	}
	v := url.PathEscape(vhost)
	if vhost != "/" { // a local addition: the controller expects the vhost to exist
		u, err := url.Parse(amqpURL)
		if err != nil {
			return err
		}
		if err := mgmt("PUT", "/api/vhosts/"+v, map[string]any{}); err != nil {
			return err
		}
		if err := mgmt("PUT", "/api/permissions/"+v+"/"+url.PathEscape(u.User.Username()),
			map[string]string{"configure": ".*", "write": ".*", "read": ".*"}); err != nil {
			return err
		}
	}
	conn, err := amqp.Dial(strings.TrimSuffix(amqpURL, "/") + "/" + url.PathEscape(vhost))
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, e := range o.Exchanges {
		s := e.Spec
		if err := ch.ExchangeDeclare(s.Name, s.Type, s.Durable, s.AutoDelete, false, false, table(s.Arguments)); err != nil {
			return fmt.Errorf("exchange %s: %w", s.Name, err)
		}
	}
	for _, q := range o.Queues {
		s := q.Spec
		args := table(s.Arguments)
		if s.Type != "" {
			args["x-queue-type"] = s.Type
		}
		if _, err := ch.QueueDeclare(s.Name, s.Durable, s.AutoDelete, false, false, args); err != nil {
			return fmt.Errorf("queue %s: %w", s.Name, err)
		}
	}
	for _, b := range o.Bindings {
		s := b.Spec
		if err := ch.QueueBind(s.Destination, s.RoutingKey, s.Source, false, table(s.Arguments)); err != nil {
			return fmt.Errorf("binding %s: %w", b.Name, err)
		}
	}
	for _, p := range o.Policies {
		s := p.Spec
		if err := mgmt("PUT", "/api/policies/"+v+"/"+url.PathEscape(s.Name), map[string]any{
			"pattern": s.Pattern, "apply-to": s.ApplyTo, "priority": s.Priority, "definition": json.RawMessage(s.Definition.Raw),
		}); err != nil {
			return err
		}
	}
	return nil
}

func table(raw *runtime.RawExtension) amqp.Table {
	t := amqp.Table{}
	if raw != nil && len(raw.Raw) > 0 {
		check(json.Unmarshal(raw.Raw, &t))
	}
	return t
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
