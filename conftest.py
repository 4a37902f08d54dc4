"""Root pytest configuration shared by every test tier."""

from harness.node import put_node_on_path

# jsii starts `node` from PATH when aws_cdk is first imported: make it the wheel's Node 24.
put_node_on_path()
