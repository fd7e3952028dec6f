"""rtnetlink: the one parser of link and address messages, and the changes we make to links."""
