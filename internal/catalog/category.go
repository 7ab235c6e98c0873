package catalog

import (
	"sort"
	"strings"
)

// Category is a node of the category tree: a category (Path "electronics") or a
// subcategory below it (Path "electronics/laptops/gaming"). Count includes every product
// at or below the node.
type Category struct {
	Slug     string      `json:"slug"`
	Path     string      `json:"path"`
	Count    int64       `json:"count"`
	Children []*Category `json:"children"`
}

// PathCount is how many products sit at exactly one category path.
type PathCount struct {
	Category    string
	Subcategory string
	Count       int64
}

// buildTree folds per-path counts into the tree, children sorted by slug.
func buildTree(counts []PathCount) []*Category {
	root := &Category{}
	index := map[string]*Category{}
	for _, pc := range counts {
		segs := []string{pc.Category}
		if pc.Subcategory != "" {
			segs = append(segs, strings.Split(pc.Subcategory, "/")...)
		}
		parent := root
		for i, seg := range segs {
			path := strings.Join(segs[:i+1], "/")
			node, ok := index[path]
			if !ok {
				node = &Category{Slug: seg, Path: path, Children: []*Category{}}
				index[path] = node
				parent.Children = append(parent.Children, node)
			}
			node.Count += pc.Count
			parent = node
		}
	}
	var sortAll func([]*Category)
	sortAll = func(cs []*Category) {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Slug < cs[j].Slug })
		for _, c := range cs {
			sortAll(c.Children)
		}
	}
	sortAll(root.Children)
	if root.Children == nil {
		return []*Category{}
	}
	return root.Children
}
