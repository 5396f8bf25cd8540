"""Alibaba Cloud Bailian (DashScope) image-edit adapter."""
