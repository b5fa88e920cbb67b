package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// scheme knows the API groups floe's manifests may use. A kind outside
// them is an error, not a silent pass.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, rbacv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// object is one decoded manifest document.
type object struct {
	GVK schema.GroupVersionKind
	Obj runtime.Object
	Raw []byte
}

func (o object) String() string {
	name := ""
	if m, ok := o.Obj.(interface{ GetName() string }); ok {
		name = m.GetName()
	}
	return o.GVK.Kind + "/" + name
}

// readFiles decodes every YAML document in files strictly: unknown and
// duplicate fields are errors.
func readFiles(files []string) ([]object, error) {
	dec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	var objs []object
	for _, file := range files {
		docs, err := splitDocs(file)
		if err != nil {
			return nil, err
		}
		for i, doc := range docs {
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			objs = append(objs, object{GVK: *gvk, Obj: obj, Raw: doc})
		}
	}
	return objs, nil
}

// kindsIn returns the kind of every document in files, reading nothing
// else, so that a schema can be written even for a broken manifest.
func kindsIn(files []string) ([]schema.GroupVersionKind, error) {
	var kinds []schema.GroupVersionKind
	for _, file := range files {
		docs, err := splitDocs(file)
		if err != nil {
			return nil, err
		}
		for i, doc := range docs {
			var tm metav1.TypeMeta
			if err := utilyaml.Unmarshal(doc, &tm); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			kinds = append(kinds, tm.GroupVersionKind())
		}
	}
	return kinds, nil
}

// splitDocs returns the non-empty YAML documents of file.
func splitDocs(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || isComment(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

func isComment(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}
