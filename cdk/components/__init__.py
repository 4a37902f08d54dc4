"""One construct per concern; the stacks in ``cdk.stacks`` compose them."""
